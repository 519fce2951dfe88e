// Every error this package throws or rejects with: one class per cause, each
// with a one-line message that says what to do.

/** The base class of every error of this package. */
export class EmitterError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The subject prefix is not one or more `.`-separated tokens of `[A-Za-z0-9_-]`. */
export class InvalidPrefixError extends EmitterError {
  constructor(prefix, reason) {
    super(`invalid subject prefix ${JSON.stringify(prefix)}: ${reason}`);
    this.prefix = prefix;
  }
}

/** socket.io keeps this event name for itself. */
export class ReservedEventError extends EmitterError {
  constructor(event) {
    super(
      `${JSON.stringify(event)} is a reserved socket.io event name (connect, connect_error, disconnect, disconnecting, newListener, removeListener): pick another name`,
    );
    this.event = event;
  }
}

/** NATS reported that nobody listens on the namespace's subject: no server serves it. */
export class NoServersError extends EmitterError {
  constructor(ns, prefix) {
    super(
      `no socket.io server serves namespace ${JSON.stringify(ns)} with prefix ${JSON.stringify(prefix)}: check the prefix and that the servers started the namespace`,
    );
    this.ns = ns;
    this.prefix = prefix;
  }
}

/** No server answered within the request timeout (and NATS did not say that nobody listens). */
export class TimeoutError extends EmitterError {
  constructor(ns, timeoutMs) {
    super(`no socket.io server of namespace ${JSON.stringify(ns)} answered within ${timeoutMs} ms`);
    this.ns = ns;
    this.timeout = timeoutMs;
  }
}

/**
 * The request reached its timeout while live servers (they answer liveness
 * probes) had not answered it in full: their part is missing, so no partial
 * answer is returned as if it were complete. Retry; if it persists, look at
 * those servers.
 */
export class IncompleteError extends EmitterError {
  constructor(missing, timeoutMs) {
    super(`request timed out after ${timeoutMs} ms without the answers of live servers ${missing.join(", ")}`);
    /** The ids of the servers whose answers are missing. */
    this.missing = missing;
    this.timeout = timeoutMs;
  }
}

/** The encoded message is larger than the NATS server's `max_payload`. */
export class PayloadTooLargeError extends EmitterError {
  constructor(size, max) {
    super(
      `message of ${size} bytes exceeds the NATS server's max_payload of ${max} bytes; send smaller payloads or raise max_payload`,
    );
    this.size = size;
    this.max = max;
  }
}

/** NATS could not take the message, the subscription, or lost the connection during a request. */
export class ConnectionError extends EmitterError {}

/** An answer from the cluster could not be decoded (another protocol version, or a corrupt message). */
export class ProtocolError extends EmitterError {}

/** Why one socket's ack did not come (an entry of `emitWithAck`'s results). */
export class AckError extends EmitterError {
  constructor(message, detail) {
    super(message);
    /** What the server reported, decoded from socketioxide's `AckError` (e.g. `{ Socket: "Closed" }`). */
    this.detail = detail;
  }
}

/** The client did not acknowledge within the ack timeout. */
export class AckTimeoutError extends AckError {
  constructor() {
    super("the client did not acknowledge in time", "Timeout");
  }
}

/** A server answered a server-side event or a custom request with an error. */
export class ReplyError extends EmitterError {
  constructor(serverId, reason) {
    super(`server ${serverId} answered with an error: ${reason}`);
    this.serverId = serverId;
    this.reason = reason;
  }
}
