// Type declarations of @socketioxide-nats/emitter (hand-written; the package is
// plain JavaScript, ES modules).

import type { NatsConnection } from "nats";

/** The socket.io parser of the servers: events must be encoded the same way. */
export type Parser = "default" | "msgpack";

/** Receives the emitter's diagnostics (undecodable answers, servers found gone, ...). */
export interface Logger {
  debug(message: string): void;
  warn(message: string): void;
}

export interface EmitterOptions {
  /** The subject prefix of the servers' adapter: one or more `.`-separated tokens of `[A-Za-z0-9_-]`. Default `"socket.io"`. */
  prefix?: string;
  /** The servers' socket.io parser. Default `"default"` (JSON with binary attachments). */
  parser?: Parser;
  /** How long a request (fetchSockets, rooms, serverCount, the acks of emitWithAck on top of the ack timeout) waits, in ms. Default 5000. */
  requestTimeout?: number;
  /** How long clients have to acknowledge `emitWithAck`, in ms. Default 5000. */
  ackTimeout?: number;
  /** How long a server has to answer a liveness probe, in ms. Default 500; keep it the servers' own `probe_timeout`. */
  probeTimeout?: number;
  /** Where diagnostics go. Default: `warn` to `console.warn`, `debug` dropped. */
  logger?: Partial<Logger>;
}

/** A socket of the cluster, as returned by `fetchSockets`. */
export interface SocketInfo {
  /** The socket id. */
  id: string;
  /** The id of the server holding it. */
  serverId: string;
  /** Its namespace. */
  ns: string;
}

/** One socket's ack, an entry of `emitWithAck`'s result. */
export type AckResult<T = unknown> =
  | {
      sid: string;
      serverId: string;
      ok: true;
      /** The first argument the client passed to its ack callback (what socket.io's `emitWithAck` resolves with). */
      value: T;
      /** Every argument the client passed to its ack callback. */
      args: unknown[];
    }
  | {
      sid: string;
      serverId: string;
      ok: false;
      /** An AckTimeoutError when the client did not answer within the ack timeout. */
      error: AckError;
    };

/** One server's answer to `serverSideEmitWithAck` or `customRequest`. */
export type ReplyResult<T = unknown> =
  | { serverId: string; ok: true; value: T }
  | { serverId: string; ok: false; error: ReplyError };

/** A room name or a socket id, or several. */
export type Rooms = string | readonly string[];

/** Which sockets of which namespace; every method returns a new operator. */
export declare class BroadcastOperator {
  private constructor();
  /** Target the sockets in `room` (room names or socket ids); chainable, rooms accumulate, each socket is reached once. */
  to(room: Rooms): BroadcastOperator;
  /** Alias of `to`. */
  in(room: Rooms): BroadcastOperator;
  /** Exclude the sockets in `room`. */
  except(room: Rooms): BroadcastOperator;
  /** The event may be dropped for clients that are not ready to receive it. */
  readonly volatile: BroadcastOperator;
  /** How long clients have to acknowledge `emitWithAck`, in ms. */
  timeout(ms: number): BroadcastOperator;
  /** Emit to the selected sockets of every server. Binary arguments (Buffer, typed arrays, ArrayBuffer) travel as binary. */
  emit(ev: string, ...args: unknown[]): Promise<void>;
  /** Emit and collect the ack of every selected socket of every server. */
  emitWithAck<T = unknown>(ev: string, ...args: unknown[]): Promise<AckResult<T>[]>;
  /** Make the selected sockets join `rooms`. */
  socketsJoin(rooms: Rooms): Promise<void>;
  /** Make the selected sockets leave `rooms`. */
  socketsLeave(rooms: Rooms): Promise<void>;
  /** Disconnect the selected sockets. `close` is accepted for compatibility and ignored. */
  disconnectSockets(close?: boolean): Promise<void>;
  /** The selected sockets of every server. Rejects with IncompleteError rather than return a partial list. */
  fetchSockets(): Promise<SocketInfo[]>;
  /** The rooms of the selected sockets of every server, merged and sorted. */
  allRooms(): Promise<string[]>;
  /** Alias of `allRooms`. */
  rooms(): Promise<string[]>;
  /** The ids of the servers of the namespace (never the emitter's). */
  serverIds(): Promise<string[]>;
  /** How many servers serve the namespace (never counting the emitter). */
  serverCount(): Promise<number>;
  /** A server-side event for every server's handler; data is MessagePack: one argument as itself, several as an array, none as nil. */
  serverSideEmit(ev: string, ...args: unknown[]): Promise<void>;
  /** A server-side event, and each server's acknowledgement. */
  serverSideEmitWithAck<T = unknown>(ev: string, ...args: unknown[]): Promise<ReplyResult<T>[]>;
  /** A custom request (`CustomRequest`) answered by each server's custom hook. */
  customRequest<T = unknown>(data?: unknown): Promise<ReplyResult<T>[]>;
}

/**
 * Emits into a socketioxide-nats cluster from a process that is not a socket.io
 * server; never counted as a server.
 */
export declare class Emitter {
  /**
   * @param nc a connection from `connect()` of the `nats` package (v2)
   * @param opts prefix, parser, timeouts
   * @param nsp the namespace, `/` by default
   */
  constructor(nc: NatsConnection, opts?: EmitterOptions, nsp?: string);
  /** The id this emitter signs its messages with (16 characters of url-safe base64). */
  readonly uid: string;
  /** The namespace this emitter targets. */
  readonly nsp: string;
  /** An emitter for namespace `nsp` (a missing leading `/` is added), sharing this one's connection, options and id. */
  of(nsp: string): Emitter;
  to(room: Rooms): BroadcastOperator;
  in(room: Rooms): BroadcastOperator;
  except(room: Rooms): BroadcastOperator;
  readonly volatile: BroadcastOperator;
  timeout(ms: number): BroadcastOperator;
  emit(ev: string, ...args: unknown[]): Promise<void>;
  emitWithAck<T = unknown>(ev: string, ...args: unknown[]): Promise<AckResult<T>[]>;
  socketsJoin(rooms: Rooms): Promise<void>;
  socketsLeave(rooms: Rooms): Promise<void>;
  disconnectSockets(close?: boolean): Promise<void>;
  fetchSockets(): Promise<SocketInfo[]>;
  allRooms(): Promise<string[]>;
  rooms(): Promise<string[]>;
  serverIds(): Promise<string[]>;
  serverCount(): Promise<number>;
  serverSideEmit(ev: string, ...args: unknown[]): Promise<void>;
  serverSideEmitWithAck<T = unknown>(ev: string, ...args: unknown[]): Promise<ReplyResult<T>[]>;
  customRequest<T = unknown>(data?: unknown): Promise<ReplyResult<T>[]>;
  /** Wait until everything published so far has reached the NATS server (bounded by requestTimeout). */
  flush(): Promise<void>;
}

/** Event names socket.io keeps for itself. */
export declare const RESERVED_EVENTS: readonly [
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
];

/** The base class of every error of this package. */
export declare class EmitterError extends Error {}
/** The prefix is not one or more `.`-separated tokens of `[A-Za-z0-9_-]`. */
export declare class InvalidPrefixError extends EmitterError {
  readonly prefix: string;
}
/** socket.io keeps this event name for itself. */
export declare class ReservedEventError extends EmitterError {
  readonly event: string;
}
/** NATS reported that nobody listens on the namespace's subject (status 503). */
export declare class NoServersError extends EmitterError {
  readonly ns: string;
  readonly prefix: string;
}
/** No server answered within the request timeout. */
export declare class TimeoutError extends EmitterError {
  readonly ns: string;
  readonly timeout: number;
}
/** Live servers (they answer probes) had not answered in full at the timeout: no partial answer is returned. */
export declare class IncompleteError extends EmitterError {
  /** The ids of the servers whose answers are missing. */
  readonly missing: string[];
  readonly timeout: number;
}
/** The encoded message exceeds the NATS server's max_payload. */
export declare class PayloadTooLargeError extends EmitterError {
  readonly size: number;
  readonly max: number;
}
/** NATS could not take the message or the subscription, or the connection was lost during a request. */
export declare class ConnectionError extends EmitterError {}
/** A message could not be decoded. */
export declare class ProtocolError extends EmitterError {}
/** Why one socket's ack did not come. */
export declare class AckError extends EmitterError {
  /** socketioxide's AckError as the server reported it, e.g. `"Timeout"` or `{ Socket: "Closed" }`. */
  readonly detail: unknown;
}
/** The client did not acknowledge within the ack timeout. */
export declare class AckTimeoutError extends AckError {}
/** A server answered a server-side event or a custom request with an error. */
export declare class ReplyError extends EmitterError {
  readonly serverId: string;
  readonly reason: string;
}
