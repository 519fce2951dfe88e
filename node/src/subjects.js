// Subjects (PROTOCOL.md §2): `{prefix}.{ns}.b.{origin}`, `{prefix}.{ns}.n.{target}.{origin}`
// and `{prefix}.{ns}.r.{requester}.{req}`, with the namespace made into one token.

import { createHash, randomBytes } from "node:crypto";

import { InvalidPrefixError } from "./errors.js";

/** The default subject prefix. */
export const DEFAULT_PREFIX = "socket.io";
/** The longest prefix accepted, in bytes. */
export const MAX_PREFIX_LEN = 128;
/** The longest namespace token; longer encodings are replaced by a hash. */
export const MAX_TOKEN_LEN = 200;

const PLAIN = /^[A-Za-z0-9_-]+$/;

/** A random socketioxide id: 16 characters of url-safe base64 (`[A-Za-z0-9_-]{16}`). */
export function randomId() {
  return randomBytes(12).toString("base64url");
}

/** Throw an InvalidPrefixError unless `prefix` is one or more `.`-separated plain tokens. */
export function validatePrefix(prefix) {
  if (typeof prefix !== "string" || prefix.length === 0) throw new InvalidPrefixError(prefix, "it is empty");
  if (Buffer.byteLength(prefix) > MAX_PREFIX_LEN) throw new InvalidPrefixError(prefix, "it is longer than 128 bytes");
  for (const tok of prefix.split(".")) {
    if (tok.length === 0) {
      throw new InvalidPrefixError(prefix, "it has an empty token (leading, trailing or double '.')");
    }
    if (!PLAIN.test(tok)) {
      throw new InvalidPrefixError(prefix, "tokens may only contain ASCII letters, digits, '-' and '_'");
    }
  }
}

/**
 * A namespace path as exactly one subject token: ASCII letters, digits and `-`
 * kept, every other byte of its UTF-8 form written `_XX` (uppercase hex), the
 * empty string `_`, and a result over 200 bytes replaced by `_h` and the
 * SHA-256 of the path in lowercase hex.
 */
export function nsToken(ns) {
  if (ns.length === 0) return "_";
  let out = "";
  for (const b of Buffer.from(ns, "utf8")) {
    const plain = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d;
    out += plain ? String.fromCharCode(b) : `_${b.toString(16).toUpperCase().padStart(2, "0")}`;
    if (out.length > MAX_TOKEN_LEN) return `_h${createHash("sha256").update(ns, "utf8").digest("hex")}`;
  }
  return out;
}

/** The subjects of one namespace under one prefix. */
export class NsSubjects {
  constructor(prefix, ns) {
    this.base = `${prefix}.${nsToken(ns)}`;
  }
  /** Where `origin` publishes requests to every node. */
  broadcast(origin) {
    return `${this.base}.b.${origin}`;
  }
  /** Where `origin` publishes requests to the node `target` only. */
  node(target, origin) {
    return `${this.base}.n.${target}.${origin}`;
  }
  /** The reply subject of request `req` of `requester`. */
  reply(requester, req) {
    return `${this.base}.r.${requester}.${req}`;
  }
  /** Every reply subject of `requester`. */
  replyFilter(requester) {
    return `${this.base}.r.${requester}.*`;
  }
}
