// The small subset of MessagePack the wire protocol uses (PROTOCOL.md §3): nil,
// bool, integers, str, bin and arrays, written with the smallest encoding, as
// the Rust protocol crate writes them, byte for byte.
//
// Hand-written rather than @msgpack/msgpack for the envelope: the encoding must
// be exact (str vs bin, integer widths, u64 values above 2^53), and every length
// read from the wire is checked against the bytes left before it is used.
// @msgpack/msgpack encodes the application's own values (msgpack parser, server
// event data).

import { ProtocolError } from "./errors.js";

/** How deep `skip` follows nested arrays and maps before giving up. */
const MAX_SKIP_DEPTH = 32;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Writes MessagePack values into a growable buffer. */
export class Writer {
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  reserve(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(b) {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  u16(v) {
    this.reserve(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u32(v) {
    this.reserve(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  bytes(b) {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  finish() {
    return this.buf.subarray(0, this.pos);
  }

  array(len) {
    if (len <= 15) this.u8(0x90 | len);
    else if (len <= 0xffff) {
      this.u8(0xdc);
      this.u16(len);
    } else {
      this.u8(0xdd);
      this.u32(len);
    }
  }

  nil() {
    this.u8(0xc0);
  }

  bool(v) {
    this.u8(v ? 0xc3 : 0xc2);
  }

  /** A non-negative integer (number or bigint up to 2^64-1), smallest encoding. */
  uint(v) {
    if (typeof v === "bigint") {
      if (v < 0n || v > U64_MAX) throw new RangeError(`${v} is not a u64`);
      if (v <= 0xffff_ffffn) return this.uint(Number(v));
      this.u8(0xcf);
      this.reserve(8);
      this.view.setBigUint64(this.pos, v);
      this.pos += 8;
      return;
    }
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${v} is not a non-negative integer`);
    if (v <= 0x7f) this.u8(v);
    else if (v <= 0xff) {
      this.u8(0xcc);
      this.u8(v);
    } else if (v <= 0xffff) {
      this.u8(0xcd);
      this.u16(v);
    } else if (v <= 0xffff_ffff) {
      this.u8(0xce);
      this.u32(v);
    } else {
      if (!Number.isSafeInteger(v)) throw new RangeError(`${v} is not a safe integer: pass a bigint`);
      this.uint(BigInt(v));
    }
  }

  /** A signed integer (number or bigint within i64), smallest encoding. */
  int(v) {
    if (typeof v === "bigint") {
      if (v >= 0n) return this.uint(v);
      if (v < I64_MIN) throw new RangeError(`${v} is not an i64`);
      if (v >= -0x8000_0000n) return this.int(Number(v));
      this.u8(0xd3);
      this.reserve(8);
      this.view.setBigInt64(this.pos, v);
      this.pos += 8;
      return;
    }
    if (!Number.isInteger(v)) throw new RangeError(`${v} is not an integer`);
    if (v >= 0) return this.uint(v);
    if (v >= -32) this.u8(v & 0xff);
    else if (v >= -0x80) {
      this.u8(0xd0);
      this.u8(v & 0xff);
    } else if (v >= -0x8000) {
      this.u8(0xd1);
      this.u16(v & 0xffff);
    } else if (v >= -0x8000_0000) {
      this.u8(0xd2);
      this.u32(v >>> 0);
    } else {
      if (!Number.isSafeInteger(v)) throw new RangeError(`${v} is not a safe integer: pass a bigint`);
      this.int(BigInt(v));
    }
  }

  str(s) {
    const b = utf8.encode(s);
    const len = b.length;
    if (len <= 31) this.u8(0xa0 | len);
    else if (len <= 0xff) {
      this.u8(0xd9);
      this.u8(len);
    } else if (len <= 0xffff) {
      this.u8(0xda);
      this.u16(len);
    } else {
      this.u8(0xdb);
      this.u32(len);
    }
    this.bytes(b);
  }

  optStr(s) {
    if (s === null || s === undefined) this.nil();
    else this.str(s);
  }

  bin(b) {
    const len = b.length;
    if (len <= 0xff) {
      this.u8(0xc4);
      this.u8(len);
    } else if (len <= 0xffff) {
      this.u8(0xc5);
      this.u16(len);
    } else {
      this.u8(0xc6);
      this.u32(len);
    }
    this.bytes(b);
  }
}

/** Reads MessagePack values from a received buffer; every read is bounds-checked. */
export class Reader {
  /** @param {Uint8Array} data */
  constructor(data) {
    this.data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.pos = 0;
  }

  remaining() {
    return this.data.length - this.pos;
  }

  need(n, what) {
    if (n > this.remaining()) throw new ProtocolError(`truncated ${what}`);
  }

  u8(what) {
    this.need(1, what);
    return this.data[this.pos++];
  }

  len(n, what) {
    this.need(n, what);
    const p = this.pos;
    this.pos += n;
    if (n === 1) return this.data[p];
    if (n === 2) return this.view.getUint16(p);
    return this.view.getUint32(p);
  }

  take(n, what) {
    this.need(n, what);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  peek() {
    return this.pos < this.data.length ? this.data[this.pos] : undefined;
  }

  /** Consume a nil if it is next; tell whether it was. */
  nil() {
    if (this.peek() === 0xc0) {
      this.pos++;
      return true;
    }
    return false;
  }

  unexpected(what, m) {
    return new ProtocolError(`unexpected marker 0x${m.toString(16).padStart(2, "0")} for ${what}`);
  }

  /** An array header; its length is checked against the bytes left. */
  array(what) {
    const m = this.u8(what);
    let len;
    if (m >= 0x90 && m <= 0x9f) len = m & 0x0f;
    else if (m === 0xdc) len = this.len(2, what);
    else if (m === 0xdd) len = this.len(4, what);
    else throw this.unexpected(what, m);
    if (len > this.remaining()) throw new ProtocolError(`${what}: length ${len} exceeds the message`);
    return len;
  }

  bool(what) {
    const m = this.u8(what);
    if (m === 0xc2) return false;
    if (m === 0xc3) return true;
    throw this.unexpected(what, m);
  }

  /** Any integer encoding at any width, as a bigint. */
  integer(what) {
    const m = this.u8(what);
    if (m <= 0x7f) return BigInt(m);
    if (m >= 0xe0) return BigInt(m - 0x100);
    const p = this.pos;
    switch (m) {
      case 0xcc:
        return BigInt(this.len(1, what));
      case 0xcd:
        return BigInt(this.len(2, what));
      case 0xce:
        return BigInt(this.len(4, what));
      case 0xcf:
        this.need(8, what);
        this.pos += 8;
        return this.view.getBigUint64(p);
      case 0xd0:
        this.need(1, what);
        this.pos += 1;
        return BigInt(this.view.getInt8(p));
      case 0xd1:
        this.need(2, what);
        this.pos += 2;
        return BigInt(this.view.getInt16(p));
      case 0xd2:
        this.need(4, what);
        this.pos += 4;
        return BigInt(this.view.getInt32(p));
      case 0xd3:
        this.need(8, what);
        this.pos += 8;
        return this.view.getBigInt64(p);
      default:
        throw this.unexpected(what, m);
    }
  }

  /** A non-negative integer: a number, or a bigint above 2^53 - 1. */
  uint(what, max = U64_MAX) {
    const v = this.integer(what);
    if (v < 0n || v > max) throw new ProtocolError(`${what} out of range`);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  /** A signed integer within i64: a number, or a bigint beyond 2^53 - 1. */
  int(what) {
    const v = this.integer(what);
    if (v < I64_MIN || v > 0x7fff_ffff_ffff_ffffn) throw new ProtocolError(`${what} out of range`);
    const safe = BigInt(Number.MAX_SAFE_INTEGER);
    return v <= safe && v >= -safe ? Number(v) : v;
  }

  str(what) {
    const m = this.u8(what);
    let len;
    if (m >= 0xa0 && m <= 0xbf) len = m & 0x1f;
    else if (m === 0xd9) len = this.len(1, what);
    else if (m === 0xda) len = this.len(2, what);
    else if (m === 0xdb) len = this.len(4, what);
    else throw this.unexpected(what, m);
    const bytes = this.take(len, what);
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw new ProtocolError(`${what} is not valid UTF-8`);
    }
  }

  optStr(what) {
    return this.nil() ? null : this.str(what);
  }

  /** A bin, copied out of the received buffer. */
  bin(what) {
    const m = this.u8(what);
    let len;
    if (m === 0xc4) len = this.len(1, what);
    else if (m === 0xc5) len = this.len(2, what);
    else if (m === 0xc6) len = this.len(4, what);
    else throw this.unexpected(what, m);
    return new Uint8Array(this.take(len, what));
  }

  /** Skip one value of any type (fields appended by a newer minor revision). */
  skip(depth = 0) {
    const what = "skipped field";
    if (depth > MAX_SKIP_DEPTH) throw new ProtocolError("nesting deeper than 32 levels");
    const m = this.u8(what);
    let body = 0;
    let items = 0;
    if (m <= 0x7f || m >= 0xe0 || m === 0xc0 || m === 0xc2 || m === 0xc3) {
      // no body
    } else if (m >= 0x80 && m <= 0x8f) items = 2 * (m & 0x0f);
    else if (m >= 0x90 && m <= 0x9f) items = m & 0x0f;
    else if (m >= 0xa0 && m <= 0xbf) body = m & 0x1f;
    else {
      switch (m) {
        case 0xcc:
        case 0xd0:
          body = 1;
          break;
        case 0xcd:
        case 0xd1:
        case 0xd4:
          body = 2;
          break;
        case 0xd5:
          body = 3;
          break;
        case 0xce:
        case 0xd2:
        case 0xca:
          body = 4;
          break;
        case 0xd6:
          body = 5;
          break;
        case 0xcf:
        case 0xd3:
        case 0xcb:
          body = 8;
          break;
        case 0xd7:
          body = 9;
          break;
        case 0xd8:
          body = 17;
          break;
        case 0xc4:
        case 0xd9:
          body = this.len(1, what);
          break;
        case 0xc5:
        case 0xda:
          body = this.len(2, what);
          break;
        case 0xc6:
        case 0xdb:
          body = this.len(4, what);
          break;
        case 0xc7:
          body = this.len(1, what) + 1;
          break;
        case 0xc8:
          body = this.len(2, what) + 1;
          break;
        case 0xc9:
          body = this.len(4, what) + 1;
          break;
        case 0xdc:
          items = this.len(2, what);
          break;
        case 0xdd:
          items = this.len(4, what);
          break;
        case 0xde:
          items = 2 * this.len(2, what);
          break;
        case 0xdf:
          items = 2 * this.len(4, what);
          break;
        default:
          throw this.unexpected(what, m);
      }
    }
    if (items > this.remaining()) throw new ProtocolError(`truncated ${what}`);
    this.take(body, what);
    for (let i = 0; i < items; i++) this.skip(depth + 1);
  }
}
