// Requests and responses of the wire protocol (PROTOCOL.md §3-§5), encoded and
// decoded byte for byte as the Rust protocol crate does.
//
// Messages are plain objects with the field names of PROTOCOL.md and
// vectors/README.md (`type`, `origin`, `id`, `opts`, `packet`, `ack_timeout_ms`,
// ...); binary data is a Uint8Array; absent values are null. Integers are
// numbers, or bigints beyond 2^53 - 1.

import { ProtocolError } from "./errors.js";
import { Reader, Writer } from "./msgpack.js";

/** The protocol version written in every message. */
export const VERSION = 1;

/** Request types (PROTOCOL.md §4). */
export const Req = Object.freeze({
  Broadcast: 0,
  BroadcastWithAck: 1,
  DisconnectSockets: 2,
  AllRooms: 3,
  AddSockets: 4,
  DelSockets: 5,
  FetchSockets: 6,
  Heartbeat: 20,
  Hello: 21,
  Goodbye: 22,
  Discover: 23,
  ServerEvent: 30,
  CustomRequest: 31,
});

/** Response types (PROTOCOL.md §5). */
export const Res = Object.freeze({
  Ack: 0,
  AckCount: 1,
  Rooms: 2,
  Sockets: 3,
  Done: 4,
  Reply: 5,
  Nodes: 6,
});

/** Broadcast flags (`opts.flags`). */
export const Flags = Object.freeze({ Local: 1, Broadcast: 2, Volatile: 4 });

const REQUEST_TYPES = new Set(Object.values(Req));
const RESPONSE_TYPES = new Set(Object.values(Res));
const ID = /^[A-Za-z0-9_-]{16}$/;
const U32_MAX = 0xffff_ffffn;

// ===== encoding =====

function writeRooms(w, rooms) {
  w.array(rooms.length);
  for (const r of rooms) w.str(r);
}

function writeOpts(w, opts) {
  w.array(5);
  w.uint(opts.flags);
  writeRooms(w, opts.rooms ?? []);
  writeRooms(w, opts.except ?? []);
  w.optStr(opts.sid);
  w.optStr(opts.server_id);
}

function writeValue(w, value) {
  if (value.kind === 0) {
    w.array(3);
    w.uint(0);
    w.str(value.text);
    if (value.attachments === null || value.attachments === undefined) w.nil();
    else {
      w.array(value.attachments.length);
      for (const b of value.attachments) w.bin(b);
    }
  } else if (value.kind === 1) {
    w.array(2);
    w.uint(1);
    w.bin(value.bytes);
  } else {
    throw new TypeError(`unknown value kind ${value.kind}`);
  }
}

function writePacket(w, p) {
  w.array(5);
  w.str(p.ns);
  w.uint(p.type);
  if (p.data === null || p.data === undefined) w.nil();
  else writeValue(w, p.data);
  if (p.ack === null || p.ack === undefined) w.nil();
  else w.int(p.ack);
  w.optStr(p.error);
}

/** The number of elements of each request type. */
function requestLen(type) {
  switch (type) {
    case Req.Broadcast:
    case Req.AddSockets:
    case Req.DelSockets:
    case Req.ServerEvent:
      return 6;
    case Req.BroadcastWithAck:
      return 7;
    case Req.DisconnectSockets:
    case Req.AllRooms:
    case Req.FetchSockets:
    case Req.CustomRequest:
      return 5;
    case Req.Heartbeat:
    case Req.Hello:
    case Req.Goodbye:
    case Req.Discover:
      return 4;
    default:
      throw new TypeError(`unknown request type ${type}`);
  }
}

/**
 * Encode a request.
 * @returns {Uint8Array}
 */
export function encodeRequest(m) {
  const w = new Writer(256);
  w.array(requestLen(m.type));
  w.uint(VERSION);
  w.uint(m.type);
  w.str(m.origin);
  w.optStr(m.id);
  switch (m.type) {
    case Req.Broadcast:
      writeOpts(w, m.opts);
      writePacket(w, m.packet);
      break;
    case Req.BroadcastWithAck:
      writeOpts(w, m.opts);
      writePacket(w, m.packet);
      if (m.ack_timeout_ms === null || m.ack_timeout_ms === undefined) w.nil();
      else w.uint(m.ack_timeout_ms);
      break;
    case Req.AddSockets:
    case Req.DelSockets:
      writeOpts(w, m.opts);
      writeRooms(w, m.rooms);
      break;
    case Req.DisconnectSockets:
    case Req.AllRooms:
    case Req.FetchSockets:
      writeOpts(w, m.opts);
      break;
    case Req.ServerEvent:
      w.str(m.event);
      w.bin(m.data);
      break;
    case Req.CustomRequest:
      w.bin(m.data);
      break;
    default:
      break;
  }
  return w.finish();
}

/**
 * Encode a response.
 * @returns {Uint8Array}
 */
export function encodeResponse(m) {
  const w = new Writer(128);
  const len = m.type === Res.Ack ? 6 : m.type === Res.Reply ? 5 : 4;
  if (!RESPONSE_TYPES.has(m.type)) throw new TypeError(`unknown response type ${m.type}`);
  w.array(len);
  w.uint(VERSION);
  w.uint(m.type);
  w.str(m.origin);
  switch (m.type) {
    case Res.Ack:
      w.str(m.sid);
      w.bool(m.ok);
      if (m.ok) writeValue(w, m.value);
      else w.bin(m.error);
      break;
    case Res.AckCount:
    case Res.Done:
      w.uint(m.count);
      break;
    case Res.Rooms:
      writeRooms(w, m.rooms);
      break;
    case Res.Sockets:
      w.array(m.sockets.length);
      for (const s of m.sockets) {
        w.array(3);
        w.str(s.id);
        w.str(s.server_id);
        w.str(s.ns);
      }
      break;
    case Res.Reply:
      w.bool(m.ok);
      if (m.ok) w.bin(m.data);
      else w.str(m.reason);
      break;
    case Res.Nodes:
      w.array(m.nodes.length);
      for (const n of m.nodes) w.str(n);
      break;
  }
  return w.finish();
}

// ===== decoding =====

function readId(r, what) {
  const s = r.str(what);
  if (!ID.test(s)) throw new ProtocolError(`${what} is not a 16-character id`);
  return s;
}

function readOptId(r, what) {
  return r.nil() ? null : readId(r, what);
}

function readRooms(r, what) {
  const n = r.array(what);
  const rooms = [];
  for (let i = 0; i < n; i++) rooms.push(r.str(what));
  return rooms;
}

/** Read an array header of at least `min` elements; return how many to skip after them. */
function readFields(r, what, min) {
  const n = r.array(what);
  if (n < min) throw new ProtocolError(`truncated ${what}`);
  return n - min;
}

function skipExtra(r, extra) {
  for (let i = 0; i < extra; i++) r.skip();
}

function readOpts(r) {
  const extra = readFields(r, "broadcast options", 5);
  const opts = {
    flags: r.uint("broadcast flags"),
    rooms: readRooms(r, "rooms"),
    except: readRooms(r, "except rooms"),
    sid: readOptId(r, "socket id"),
    server_id: readOptId(r, "server id"),
  };
  skipExtra(r, extra);
  return opts;
}

function readValue(r) {
  const n = r.array("payload");
  if (n < 2) throw new ProtocolError("truncated payload");
  const kind = r.uint("payload type");
  let value;
  let used;
  if (kind === 0) {
    const text = r.str("payload text");
    let attachments = null;
    if (n >= 3 && !r.nil()) {
      const m = r.array("binary attachments");
      attachments = [];
      for (let i = 0; i < m; i++) attachments.push(r.bin("binary attachment"));
    }
    value = { kind: 0, text, attachments };
    used = Math.min(n, 3);
  } else if (kind === 1) {
    value = { kind: 1, bytes: r.bin("binary payload") };
    used = 2;
  } else {
    throw new ProtocolError(`invalid payload type ${kind}`);
  }
  skipExtra(r, n - used);
  return value;
}

function readPacket(r) {
  const extra = readFields(r, "packet", 5);
  const ns = r.str("packet namespace");
  const type = r.uint("packet type");
  const data = r.nil() ? null : readValue(r);
  const ack = r.nil() ? null : r.int("packet ack id");
  const error = r.optStr("packet error");
  skipExtra(r, extra);
  if (typeof type !== "number" || type > 6) throw new ProtocolError(`invalid packet type ${type}`);
  if ([2, 3, 5, 6].includes(type) && data === null) throw new ProtocolError("truncated event payload");
  if ((type === 3 || type === 6) && ack === null) throw new ProtocolError("truncated ack id");
  if (type === 4 && error === null) throw new ProtocolError("truncated connect error");
  return { ns, type, data, ack, error };
}

function readVersion(r) {
  const version = r.uint("protocol version");
  if (version !== VERSION) throw new ProtocolError(`unsupported protocol version ${version}`);
}

/** Decode a request (what nodes receive on broadcast and node subjects). */
export function decodeRequest(bytes) {
  const r = new Reader(bytes);
  const n = r.array("request");
  if (n < 4) throw new ProtocolError("truncated request");
  readVersion(r);
  const type = r.uint("request type");
  if (!REQUEST_TYPES.has(type)) throw new ProtocolError(`unknown request type ${type}`);
  const origin = readId(r, "request origin");
  const id = readOptId(r, "request id");
  const need = requestLen(type);
  if (n < need) throw new ProtocolError("truncated request");
  const m = { type, origin, id };
  switch (type) {
    case Req.Broadcast:
      m.opts = readOpts(r);
      m.packet = readPacket(r);
      break;
    case Req.BroadcastWithAck:
      m.opts = readOpts(r);
      m.packet = readPacket(r);
      m.ack_timeout_ms = r.nil() ? null : r.uint("ack timeout");
      break;
    case Req.AddSockets:
    case Req.DelSockets:
      m.opts = readOpts(r);
      m.rooms = readRooms(r, "rooms");
      break;
    case Req.DisconnectSockets:
    case Req.AllRooms:
    case Req.FetchSockets:
      m.opts = readOpts(r);
      break;
    case Req.ServerEvent:
      m.event = r.str("server event name");
      m.data = r.bin("server event data");
      break;
    case Req.CustomRequest:
      m.data = r.bin("custom request data");
      break;
    default:
      break;
  }
  skipExtra(r, n - need);
  return m;
}

/** Decode a response (what a requester receives on its reply subjects). */
export function decodeResponse(bytes) {
  const r = new Reader(bytes);
  const n = r.array("response");
  if (n < 4) throw new ProtocolError("truncated response");
  readVersion(r);
  const type = r.uint("response type");
  if (!RESPONSE_TYPES.has(type)) throw new ProtocolError(`unknown response type ${type}`);
  const origin = readId(r, "response origin");
  const m = { type, origin };
  let used = 4;
  switch (type) {
    case Res.Ack:
      if (n < 6) throw new ProtocolError("truncated ack");
      m.sid = readId(r, "acking socket id");
      m.ok = r.bool("ack status");
      if (m.ok) m.value = readValue(r);
      else m.error = r.bin("ack error");
      used = 6;
      break;
    case Res.AckCount:
    case Res.Done:
      m.count = r.uint("count", U32_MAX);
      break;
    case Res.Rooms:
      m.rooms = readRooms(r, "rooms");
      break;
    case Res.Sockets: {
      const count = r.array("sockets");
      m.sockets = [];
      for (let i = 0; i < count; i++) {
        const extra = readFields(r, "socket", 3);
        const id = readId(r, "socket id");
        const server_id = readId(r, "socket server id");
        const ns = r.str("socket namespace");
        skipExtra(r, extra);
        m.sockets.push({ id, server_id, ns });
      }
      break;
    }
    case Res.Reply:
      if (n < 5) throw new ProtocolError("truncated reply");
      m.ok = r.bool("reply status");
      if (m.ok) m.data = r.bin("reply data");
      else m.reason = r.str("reply error");
      used = 5;
      break;
    case Res.Nodes: {
      const count = r.array("nodes");
      m.nodes = [];
      for (let i = 0; i < count; i++) m.nodes.push(readId(r, "node id"));
      break;
    }
  }
  skipExtra(r, n - used);
  return m;
}
