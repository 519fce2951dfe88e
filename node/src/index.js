// @socketioxide-nats/emitter: emit into a socketioxide-nats cluster from any
// Node.js process. See README.md and ../PROTOCOL.md.

export { BroadcastOperator, Emitter, RESERVED_EVENTS } from "./emitter.js";
export {
  AckError,
  AckTimeoutError,
  ConnectionError,
  EmitterError,
  IncompleteError,
  InvalidPrefixError,
  NoServersError,
  PayloadTooLargeError,
  ProtocolError,
  ReplyError,
  ReservedEventError,
  TimeoutError,
} from "./errors.js";
