// The public API, shaped like @socket.io/redis-emitter: `new Emitter(nc, opts)`,
// `.of(nsp)`, `.to(room)`, `.except(room)`, `.volatile`, `.emit(...)`, plus what
// that package cannot do: acks from every client, fetch sockets, rooms, server
// count. A port of the Rust emitter (crates/socketioxide-nats-emitter).

import { encodeRequest, Flags, Req, Res } from "./codec.js";
import { AckError, AckTimeoutError, ConnectionError, EmitterError, ReplyError, ReservedEventError } from "./errors.js";
import { decodeAckArgs, decodeAckError, decodeData, encodeData, encodeEvent, PARSERS } from "./parser.js";
import { publish, request } from "./request.js";
import { DEFAULT_PREFIX, NsSubjects, randomId, validatePrefix } from "./subjects.js";
import { Expect } from "./tracker.js";

/** Event names socket.io keeps for itself. */
export const RESERVED_EVENTS = Object.freeze([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const noop = () => {};
const defaultLogger = Object.freeze({
  debug: noop,
  warn: (message) => console.warn(`[@socketioxide-nats/emitter] ${message}`),
});

function duration(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/** What every Emitter and operator of one `new Emitter(...)` shares. */
class Context {
  constructor(nc, opts) {
    if (!nc || typeof nc.publish !== "function" || typeof nc.subscribe !== "function") {
      throw new TypeError("new Emitter(nc): nc must be a NATS connection (from `connect()` of the `nats` package)");
    }
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    validatePrefix(prefix);
    const parser = opts.parser ?? "default";
    if (!PARSERS.includes(parser)) throw new TypeError(`parser must be "default" or "msgpack", got ${JSON.stringify(parser)}`);
    this.nc = nc;
    this.prefix = prefix;
    this.parser = parser;
    this.requestTimeout = duration("requestTimeout", opts.requestTimeout, 5000);
    this.ackTimeout = duration("ackTimeout", opts.ackTimeout, 5000);
    this.probeTimeout = duration("probeTimeout", opts.probeTimeout, 500);
    this.logger = { ...defaultLogger, ...(opts.logger ?? {}) };
    this.uid = randomId();
    this.subjects = new Map();
    // Counts the connection's disconnections and reconnections: a request
    // during which it changed may have lost answers, and fails rather than
    // return what it has as complete.
    this.epoch = 0;
    if (typeof nc.status === "function") {
      (async () => {
        for await (const s of nc.status()) {
          if (s.type === "disconnect" || s.type === "reconnect") this.epoch += 1;
        }
      })().catch(noop);
    }
  }

  subjectsOf(nsp) {
    let s = this.subjects.get(nsp);
    if (!s) {
      s = new NsSubjects(this.prefix, nsp);
      this.subjects.set(nsp, s);
    }
    return s;
  }

  target(nsp) {
    return {
      nc: this.nc,
      subjects: this.subjectsOf(nsp),
      origin: this.uid,
      ns: nsp,
      prefix: this.prefix,
      probeTimeout: this.probeTimeout,
      logger: this.logger,
      epoch: () => this.epoch,
    };
  }
}

function normalizeNsp(nsp) {
  if (typeof nsp !== "string") throw new TypeError(`a namespace is a string, got ${typeof nsp}`);
  return nsp.startsWith("/") ? nsp : `/${nsp}`;
}

function roomList(rooms) {
  const list = Array.isArray(rooms) ? rooms : [rooms];
  for (const r of list) {
    if (typeof r !== "string") throw new TypeError(`a room is a string, got ${typeof r}`);
  }
  return list;
}

function checkEvent(ev) {
  if (typeof ev !== "string") throw new TypeError(`an event name is a string, got ${typeof ev}`);
  if (RESERVED_EVENTS.includes(ev)) throw new ReservedEventError(ev);
}

function checkNoAckCallback(args, method) {
  if (typeof args[args.length - 1] === "function") {
    throw new EmitterError(`${method}() takes no callback: use ${method}WithAck() to collect the answers`);
  }
}

function ackTimeoutMs(ms) {
  if (ms === Infinity || ms >= 2 ** 64) return U64_MAX;
  return Math.floor(ms);
}

/**
 * Which sockets of which namespace: built by `Emitter#to`, `#in`, `#except`,
 * `#volatile` and `#timeout`, each returning a new operator.
 */
export class BroadcastOperator {
  #ctx;
  #nsp;
  #rooms;
  #except;
  #flags;
  #ackTimeout;

  /** @internal */
  constructor(ctx, nsp, rooms = new Set(), except = new Set(), flags = {}, ackTimeout = undefined) {
    if (!(ctx instanceof Context)) throw new TypeError("BroadcastOperator is built by Emitter#to(), #in(), #except()");
    this.#ctx = ctx;
    this.#nsp = nsp;
    this.#rooms = rooms;
    this.#except = except;
    this.#flags = flags;
    this.#ackTimeout = ackTimeout;
  }

  #with({ rooms = this.#rooms, except = this.#except, flags = this.#flags, ackTimeout = this.#ackTimeout }) {
    return new BroadcastOperator(this.#ctx, this.#nsp, rooms, except, flags, ackTimeout);
  }

  /** Target the sockets in `room` (a room name or a socket id, or an array of them); chainable, rooms accumulate. */
  to(room) {
    const rooms = new Set(this.#rooms);
    for (const r of roomList(room)) rooms.add(r);
    return this.#with({ rooms });
  }

  /** Alias of `to`. */
  in(room) {
    return this.to(room);
  }

  /** Exclude the sockets in `room` (or an array of rooms). */
  except(room) {
    const except = new Set(this.#except);
    for (const r of roomList(room)) except.add(r);
    return this.#with({ except });
  }

  /** The event may be dropped for clients that are not ready to receive it. */
  get volatile() {
    return this.#with({ flags: { ...this.#flags, volatile: true } });
  }

  /** How long clients have to acknowledge `emitWithAck` (default: the emitter's `ackTimeout`). */
  timeout(ms) {
    return this.#with({ ackTimeout: duration("timeout", ms, undefined) });
  }

  /** The broadcast options of the wire protocol. */
  #opts() {
    return {
      flags: Flags.Broadcast | (this.#flags.volatile ? Flags.Volatile : 0),
      rooms: [...this.#rooms],
      except: [...this.#except],
      sid: null,
      server_id: null,
    };
  }

  #packet(ev, args) {
    checkEvent(ev);
    const { type, data } = encodeEvent(this.#ctx.parser, ev, args);
    return { ns: this.#nsp, type, data, ack: null, error: null };
  }

  /** Publish a request that expects no answer on the namespace's broadcast subject. */
  #publish(body) {
    const ctx = this.#ctx;
    const payload = encodeRequestOut(ctx, body);
    publish(ctx.nc, ctx.subjectsOf(this.#nsp).broadcast(ctx.uid), payload);
  }

  #ask(body, expect, timeoutMs = this.#ctx.requestTimeout) {
    return request(this.#ctx.target(this.#nsp), body ? { body, expect } : null, timeoutMs);
  }

  /**
   * Emit `ev` with `args` to the selected sockets of every server. Resolves once
   * the message is handed to the NATS client (call `flush()` before exiting).
   */
  async emit(ev, ...args) {
    checkNoAckCallback(args, "emit");
    this.#publish({ type: Req.Broadcast, opts: this.#opts(), packet: this.#packet(ev, args) });
  }

  /**
   * Emit `ev` and collect the acks of the selected sockets of every server: one
   * entry per socket, `{sid, serverId, ok: true, value, args}` or
   * `{sid, serverId, ok: false, error}` (an AckTimeoutError for a client that did
   * not answer within the timeout). Ends as soon as every live server reported
   * all its acks; waits at most requestTimeout + the ack timeout.
   */
  async emitWithAck(ev, ...args) {
    checkNoAckCallback(args, "emitWithAck");
    const ctx = this.#ctx;
    const ackTimeout = this.#ackTimeout ?? ctx.ackTimeout;
    const body = {
      type: Req.BroadcastWithAck,
      opts: this.#opts(),
      packet: this.#packet(ev, args),
      ack_timeout_ms: ackTimeoutMs(ackTimeout),
    };
    const { responses } = await this.#ask(body, Expect.acks, ctx.requestTimeout + ackTimeout);
    return responses.filter((r) => r.type === Res.Ack).map(ackResult);
  }

  /** Make the selected sockets of every server join `rooms` (a room or an array of rooms). */
  async socketsJoin(rooms) {
    this.#publish({ type: Req.AddSockets, opts: this.#opts(), rooms: roomList(rooms) });
  }

  /** Make the selected sockets of every server leave `rooms`. */
  async socketsLeave(rooms) {
    this.#publish({ type: Req.DelSockets, opts: this.#opts(), rooms: roomList(rooms) });
  }

  /**
   * Disconnect the selected sockets of every server. `close` is accepted for
   * compatibility with socket.io and ignored: socketioxide's disconnection
   * always closes the socket's namespace connection only.
   */
  async disconnectSockets(close = false) {
    this.#publish({ type: Req.DisconnectSockets, opts: this.#opts() });
  }

  /**
   * The selected sockets of every server: `[{id, serverId, ns}]`. Rejects with an
   * IncompleteError rather than return a partial list.
   */
  async fetchSockets() {
    const { responses } = await this.#ask({ type: Req.FetchSockets, opts: this.#opts() }, Expect.one(Res.Sockets));
    const out = [];
    for (const r of responses) for (const s of r.sockets) out.push({ id: s.id, serverId: s.server_id, ns: s.ns });
    return out;
  }

  /** The rooms of the selected sockets of every server, merged and sorted. */
  async allRooms() {
    const { responses } = await this.#ask({ type: Req.AllRooms, opts: this.#opts() }, Expect.one(Res.Rooms));
    const all = new Set();
    for (const r of responses) for (const room of r.rooms) all.add(room);
    return [...all].sort();
  }

  /** Alias of `allRooms`. */
  rooms() {
    return this.allRooms();
  }

  /** The ids of the servers of this namespace (never this emitter). */
  async serverIds() {
    const { nodes } = await this.#ask(null, null);
    return nodes;
  }

  /** How many servers serve this namespace (the emitter is never counted). */
  async serverCount() {
    return (await this.serverIds()).length;
  }

  /**
   * Emit a server-side event to every server of this namespace; their handlers
   * (`NatsHandle::on_server_event`) receive it like one sent by a server. The
   * data is MessagePack: one argument as itself, several as an array, none as nil.
   */
  async serverSideEmit(ev, ...args) {
    checkEvent(ev);
    checkNoAckCallback(args, "serverSideEmit");
    this.#publish({ type: Req.ServerEvent, event: ev, data: encodeData(serverData(args)) });
  }

  /**
   * Emit a server-side event and collect each server's acknowledgement:
   * `[{serverId, ok: true, value}]` or `{serverId, ok: false, error}` (a
   * ReplyError, e.g. no handler for the event on that server).
   */
  async serverSideEmitWithAck(ev, ...args) {
    checkEvent(ev);
    checkNoAckCallback(args, "serverSideEmitWithAck");
    const body = { type: Req.ServerEvent, event: ev, data: encodeData(serverData(args)) };
    const { responses } = await this.#ask(body, Expect.one(Res.Reply));
    return responses.map(replyResult);
  }

  /**
   * Send a custom request to every server of this namespace (`CustomRequest`,
   * answered by the hook set with `NatsHandle::set_custom_hook`): `data` travels
   * as MessagePack. Resolves with each server's answer, like `serverSideEmitWithAck`.
   */
  async customRequest(data) {
    const body = { type: Req.CustomRequest, data: encodeData(data ?? null) };
    const { responses } = await this.#ask(body, Expect.one(Res.Reply));
    return responses.map(replyResult);
  }
}

function serverData(args) {
  if (args.length === 0) return null;
  return args.length === 1 ? args[0] : args;
}

/** A request that expects no answer: id nil, no reply subject. */
function encodeRequestOut(ctx, body) {
  return encodeRequest({ ...body, origin: ctx.uid, id: null });
}

function ackResult(res) {
  if (res.ok) {
    try {
      const args = decodeAckArgs(res.value);
      return { sid: res.sid, serverId: res.origin, ok: true, value: args[0], args };
    } catch (e) {
      return { sid: res.sid, serverId: res.origin, ok: false, error: new AckError(`cannot decode the ack: ${e.message}`) };
    }
  }
  let detail;
  try {
    detail = decodeAckError(res.error);
  } catch (e) {
    return { sid: res.sid, serverId: res.origin, ok: false, error: new AckError(`undecodable ack error: ${e.message}`) };
  }
  const error = detail === "Timeout" ? new AckTimeoutError() : new AckError(`the server reported: ${JSON.stringify(detail)}`, detail);
  return { sid: res.sid, serverId: res.origin, ok: false, error };
}

function replyResult(res) {
  if (!res.ok) return { serverId: res.origin, ok: false, error: new ReplyError(res.origin, res.reason) };
  try {
    return { serverId: res.origin, ok: true, value: decodeData(res.data) };
  } catch (e) {
    return { serverId: res.origin, ok: false, error: new ReplyError(res.origin, `undecodable answer: ${e.message}`) };
  }
}

/**
 * Emits into a socketioxide-nats cluster from a process that is not a socket.io
 * server; never counted as a server.
 *
 * ```js
 * const emitter = new Emitter(nc, { prefix: "socket.io" });
 * await emitter.to("room1").emit("news", "hello");
 * ```
 */
export class Emitter {
  #ctx;
  #nsp;

  /**
   * @param {import("nats").NatsConnection} nc a connection from `connect()` of the `nats` package
   * @param {object} [opts] `{prefix, parser, requestTimeout, ackTimeout, probeTimeout, logger}`
   * @param {string} [nsp] the namespace, `/` by default
   */
  constructor(nc, opts = {}, nsp = "/") {
    this.#ctx = nc instanceof Context ? nc : new Context(nc, opts ?? {});
    this.#nsp = normalizeNsp(nsp);
  }

  /** The id this emitter signs its messages with (16 characters, never a server's). */
  get uid() {
    return this.#ctx.uid;
  }

  /** The namespace this emitter targets. */
  get nsp() {
    return this.#nsp;
  }

  /** An emitter for namespace `nsp` (a missing leading `/` is added), sharing this one's connection and id. */
  of(nsp) {
    return new Emitter(this.#ctx, undefined, normalizeNsp(nsp));
  }

  #op() {
    return new BroadcastOperator(this.#ctx, this.#nsp);
  }

  /** Target the sockets in `room` (or rooms); see BroadcastOperator#to. */
  to(room) {
    return this.#op().to(room);
  }

  /** Alias of `to`. */
  in(room) {
    return this.#op().in(room);
  }

  /** Exclude the sockets in `room` (or rooms). */
  except(room) {
    return this.#op().except(room);
  }

  /** The next emit may be dropped for clients that are not ready. */
  get volatile() {
    return this.#op().volatile;
  }

  /** How long clients have to acknowledge the next emitWithAck. */
  timeout(ms) {
    return this.#op().timeout(ms);
  }

  /** Emit to every socket of the namespace. */
  emit(ev, ...args) {
    return this.#op().emit(ev, ...args);
  }

  /** Emit to every socket of the namespace and collect their acks. */
  emitWithAck(ev, ...args) {
    return this.#op().emitWithAck(ev, ...args);
  }

  /** Make every socket of the namespace join `rooms`. */
  socketsJoin(rooms) {
    return this.#op().socketsJoin(rooms);
  }

  /** Make every socket of the namespace leave `rooms`. */
  socketsLeave(rooms) {
    return this.#op().socketsLeave(rooms);
  }

  /** Disconnect every socket of the namespace (`close` is ignored). */
  disconnectSockets(close = false) {
    return this.#op().disconnectSockets(close);
  }

  /** Every socket of the namespace, on every server. */
  fetchSockets() {
    return this.#op().fetchSockets();
  }

  /** Every room of the namespace, on every server. */
  allRooms() {
    return this.#op().allRooms();
  }

  /** Alias of `allRooms`. */
  rooms() {
    return this.#op().allRooms();
  }

  /** The ids of the servers of the namespace. */
  serverIds() {
    return this.#op().serverIds();
  }

  /** How many servers serve the namespace. */
  serverCount() {
    return this.#op().serverCount();
  }

  /** Emit a server-side event to every server of the namespace. */
  serverSideEmit(ev, ...args) {
    return this.#op().serverSideEmit(ev, ...args);
  }

  /** Emit a server-side event and collect each server's acknowledgement. */
  serverSideEmitWithAck(ev, ...args) {
    return this.#op().serverSideEmitWithAck(ev, ...args);
  }

  /** Send a custom request to every server of the namespace. */
  customRequest(data) {
    return this.#op().customRequest(data);
  }

  /**
   * Wait until everything published so far has reached the NATS server. Emits
   * resolve once the NATS client has queued the message: a process that exits
   * right after emitting should flush (or `nc.drain()`) first.
   */
  async flush() {
    const ctx = this.#ctx;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new ConnectionError(`NATS is unreachable: could not flush within ${ctx.requestTimeout} ms`)),
        Math.min(ctx.requestTimeout, 2 ** 31 - 1),
      );
    });
    try {
      await Promise.race([ctx.nc.flush(), timeout]);
    } catch (e) {
      if (e instanceof EmitterError) throw e;
      throw new ConnectionError(`cannot flush: ${e.message}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }
}
