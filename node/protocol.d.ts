// Type declarations of @socketioxide-nats/emitter/protocol: the wire protocol's
// messages (PROTOCOL.md §3-§5), with the field names of PROTOCOL.md and
// vectors/README.md. Binary data is a Uint8Array; absent values are null;
// integers are numbers, or bigints beyond 2^53 - 1.

/** The protocol version written in every message. */
export declare const VERSION: 1;

export declare const Req: Readonly<{
  Broadcast: 0;
  BroadcastWithAck: 1;
  DisconnectSockets: 2;
  AllRooms: 3;
  AddSockets: 4;
  DelSockets: 5;
  FetchSockets: 6;
  Heartbeat: 20;
  Hello: 21;
  Goodbye: 22;
  Discover: 23;
  ServerEvent: 30;
  CustomRequest: 31;
}>;

export declare const Res: Readonly<{
  Ack: 0;
  AckCount: 1;
  Rooms: 2;
  Sockets: 3;
  Done: 4;
  Reply: 5;
  Nodes: 6;
}>;

export declare const Flags: Readonly<{ Local: 1; Broadcast: 2; Volatile: 4 }>;

export type Uint = number | bigint;

export interface BroadcastOpts {
  flags: Uint;
  rooms: string[];
  except: string[];
  sid: string | null;
  server_id: string | null;
}

/** A packet's data as the servers' parser holds it: the default parser's text and attachments, or the msgpack parser's bytes. */
export type Value = { kind: 0; text: string; attachments: Uint8Array[] | null } | { kind: 1; bytes: Uint8Array };

export interface Packet {
  ns: string;
  type: number;
  data: Value | null;
  ack: number | bigint | null;
  error: string | null;
}

interface RequestHeader {
  origin: string;
  id: string | null;
}

export type Request = RequestHeader &
  (
    | { type: 0; opts: BroadcastOpts; packet: Packet }
    | { type: 1; opts: BroadcastOpts; packet: Packet; ack_timeout_ms: Uint | null }
    | { type: 2 | 3 | 6; opts: BroadcastOpts }
    | { type: 4 | 5; opts: BroadcastOpts; rooms: string[] }
    | { type: 20 | 21 | 22 | 23 }
    | { type: 30; event: string; data: Uint8Array }
    | { type: 31; data: Uint8Array }
  );

export type Response = { origin: string } & (
  | { type: 0; sid: string; ok: true; value: Value }
  | { type: 0; sid: string; ok: false; error: Uint8Array }
  | { type: 1 | 4; count: number }
  | { type: 2; rooms: string[] }
  | { type: 3; sockets: { id: string; server_id: string; ns: string }[] }
  | { type: 5; ok: true; data: Uint8Array }
  | { type: 5; ok: false; reason: string }
  | { type: 6; nodes: string[] }
);

export declare function encodeRequest(m: Request): Uint8Array;
export declare function decodeRequest(bytes: Uint8Array): Request;
export declare function encodeResponse(m: Response): Uint8Array;
export declare function decodeResponse(bytes: Uint8Array): Response;

export declare const DEFAULT_PREFIX: "socket.io";
/** Throws an InvalidPrefixError unless `prefix` is one or more `.`-separated tokens of `[A-Za-z0-9_-]`. */
export declare function validatePrefix(prefix: string): void;
/** A namespace path as exactly one subject token (PROTOCOL.md §2). */
export declare function nsToken(ns: string): string;
/** A random 16-character url-safe base64 id. */
export declare function randomId(): string;

export declare class NsSubjects {
  constructor(prefix: string, ns: string);
  readonly base: string;
  broadcast(origin: string): string;
  node(target: string, origin: string): string;
  reply(requester: string, req: string): string;
  replyFilter(requester: string): string;
}

export type Expectation = { kind: "one"; type: number } | { kind: "acks" };
export declare const Expect: Readonly<{ one(type: number): Expectation; acks: Expectation }>;
export declare const Ignored: Readonly<Record<"UnexpectedNode" | "Duplicate" | "WrongKind" | "AckOutOfCount", string>>;

/** Which nodes still owe an answer to a request (the protocol crate's completion::Tracker). */
export declare class Tracker {
  constructor(expect: Expectation, nodes?: Iterable<string>);
  expectNode(uid: string): void;
  isExpected(uid: string): boolean;
  /** `"accept"`, or why the answer is ignored (one of `Ignored`). */
  onResponse(res: Response): string;
  gone(uid: string): boolean;
  isComplete(): boolean;
  owing(): string[];
  isSilent(uid: string): boolean;
  readonly size: number;
}

/** How long a request waits for a server's first answer before probing it, in ms. */
export declare const PROBE_AFTER: 50;
/** How often a silent server is probed again, in ms. */
export declare const PROBE_AGAIN: 200;
