// Event values in the form the servers' socket.io parser holds them
// (PROTOCOL.md §3 "Value"), as the Rust emitter's `Parser::encode` builds them.
//
// * default ("common") parser: `{kind: 0, text, attachments}` where `text` is
//   the socket.io JSON array `["event", ...args]`, each binary argument (at any
//   depth) replaced by `{"_placeholder":true,"num":N}` and carried as the N-th
//   attachment, as socket.io-parser's `deconstructPacket` does;
// * msgpack parser: `{kind: 1, bytes}`, the MessagePack array `["event", ...args]`
//   with binary arguments as `bin`.

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";

export const PARSERS = Object.freeze(["default", "msgpack"]);

/** Whether socket.io treats `x` as binary: an ArrayBuffer or a view of one (Buffer, Uint8Array, ...). */
function isBinary(x) {
  return x instanceof ArrayBuffer || ArrayBuffer.isView(x);
}

/** The bytes of a binary value, without copying. */
function bytesOf(x) {
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

/** socket.io-parser's `_deconstructPacket`: binary replaced by placeholders, collected in `buffers`. */
function deconstruct(data, buffers) {
  if (!data) return data;
  if (isBinary(data)) {
    const placeholder = { _placeholder: true, num: buffers.length };
    buffers.push(bytesOf(data));
    return placeholder;
  }
  if (Array.isArray(data)) return data.map((d) => deconstruct(d, buffers));
  if (typeof data === "object" && !(data instanceof Date)) {
    const out = {};
    for (const key of Object.keys(data)) out[key] = deconstruct(data[key], buffers);
    return out;
  }
  return data;
}

/** socket.io-parser's `_reconstructPacket`: placeholders replaced by their attachment, as a Buffer. */
function reconstruct(data, buffers) {
  if (!data) return data;
  if (data && data._placeholder === true) {
    const ok = typeof data.num === "number" && data.num >= 0 && data.num < buffers.length;
    if (!ok) throw new Error("illegal attachments");
    return buffers[data.num];
  }
  if (Array.isArray(data)) return data.map((d) => reconstruct(d, buffers));
  if (typeof data === "object") {
    for (const key of Object.keys(data)) data[key] = reconstruct(data[key], buffers);
  }
  return data;
}

/** ArrayBuffers as Uint8Array, so that @msgpack/msgpack writes them as `bin` (it writes views only). */
function binaryViews(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data) || data === null || typeof data !== "object" || data instanceof Date) return data;
  if (Array.isArray(data)) return data.map(binaryViews);
  const out = {};
  for (const key of Object.keys(data)) out[key] = binaryViews(data[key]);
  return out;
}

/** Uint8Arrays decoded from MessagePack `bin` as Buffers, like Node's socket.io clients get them. */
function asBuffers(data) {
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return data.map(asBuffers);
  if (data !== null && typeof data === "object" && !(data instanceof Date)) {
    for (const key of Object.keys(data)) data[key] = asBuffers(data[key]);
  }
  return data;
}

/**
 * The value of an event packet: `{kind: 0, text, attachments}` (default parser)
 * or `{kind: 1, bytes}` (msgpack parser), and the packet type: 5 (binary
 * event) when the default parser's value has attachments, else 2.
 */
export function encodeEvent(parser, event, args) {
  if (parser === "msgpack") {
    return { type: 2, data: { kind: 1, bytes: msgpackEncode(binaryViews([event, ...args])) } };
  }
  const buffers = [];
  const text = JSON.stringify(deconstruct([event, ...args], buffers));
  const attachments = buffers.length > 0 ? buffers : null;
  return { type: attachments ? 5 : 2, data: { kind: 0, text, attachments } };
}

/** The arguments of a client's ack, from the value a server forwarded. */
export function decodeAckArgs(value) {
  let args;
  if (value.kind === 1) {
    args = asBuffers(msgpackDecode(value.bytes));
  } else {
    const buffers = (value.attachments ?? []).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    args = reconstruct(JSON.parse(value.text), buffers);
  }
  if (!Array.isArray(args)) args = [args];
  return args;
}

/** MessagePack for server-side event and custom request data (read by rmp-serde on the nodes). */
export function encodeData(value) {
  return msgpackEncode(binaryViews(value));
}

/** Data of a node's Reply (written by rmp-serde), decoded. */
export function decodeData(bytes) {
  return asBuffers(msgpackDecode(bytes));
}

/** socketioxide's `AckError` as the node wrote it with rmp-serde: `"Timeout"`, or a map like `{Socket: "Closed"}`. */
export function decodeAckError(bytes) {
  return msgpackDecode(bytes);
}
