// The shared protocol vectors (../vectors/protocol-v1.json): every entry's bytes
// decode into its fields, and its fields encode into the same bytes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from "../src/codec.js";

const vectors = JSON.parse(readFileSync(new URL("../../vectors/protocol-v1.json", import.meta.url), "utf8"));

const bytes = (hex) => Uint8Array.from(Buffer.from(hex, "hex"));
const hex = (b) => Buffer.from(b).toString("hex");

/** A vector's value (`{kind, text, attachments}` or `{kind, bytes}`) with its hex as bytes. */
function value(v) {
  if (v === null) return null;
  if (v.kind === 0) return { kind: 0, text: v.text, attachments: v.attachments === null ? null : v.attachments.map(bytes) };
  return { kind: 1, bytes: bytes(v.bytes) };
}

/** A vector's `message` in the codec's form: the same fields, bin as Uint8Array. */
function asMessage(kind, m) {
  const out = { ...m };
  if (m.packet) out.packet = { ...m.packet, data: value(m.packet.data) };
  if (kind === "responses" && m.type === 0) {
    if (m.ok) out.value = value(m.value);
    else out.error = bytes(m.error);
  } else if (typeof m.data === "string") {
    out.data = bytes(m.data);
  }
  return out;
}

test("the vectors file covers every request and response type", () => {
  assert.equal(vectors.protocol_version, 1);
  const reqTypes = new Set(vectors.requests.map((v) => v.message.type));
  const resTypes = new Set(vectors.responses.map((v) => v.message.type));
  assert.deepEqual([...reqTypes].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 23, 30, 31]);
  assert.deepEqual([...resTypes].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6]);
});

for (const [kind, decode, encode] of [
  ["requests", decodeRequest, encodeRequest],
  ["responses", decodeResponse, encodeResponse],
]) {
  for (const v of vectors[kind]) {
    test(`${kind}: ${v.name} decodes field by field`, () => {
      assert.deepStrictEqual(decode(bytes(v.hex)), asMessage(kind, v.message));
    });
    test(`${kind}: ${v.name} encodes byte for byte`, () => {
      assert.equal(hex(encode(asMessage(kind, v.message))), v.hex);
    });
  }
}

test("readers ignore elements appended by a newer minor revision", () => {
  const v = vectors.responses.find((e) => e.name === "nodes");
  const original = bytes(v.hex);
  // One more element (a map {"x": [1, 2.5]}) at the end: array of 4 becomes 5.
  const extra = Uint8Array.from([0x81, 0xa1, 0x78, 0x92, 0x01, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0]);
  const grown = new Uint8Array(original.length + extra.length);
  grown.set(original);
  grown.set(extra, original.length);
  assert.equal(grown[0], 0x94);
  grown[0] = 0x95;
  assert.deepStrictEqual(decodeResponse(grown), asMessage("responses", v.message));
});

test("malformed messages are refused, not misread", () => {
  const v = vectors.responses.find((e) => e.name === "sockets");
  const good = bytes(v.hex);
  for (let cut = 0; cut < good.length; cut++) {
    assert.throws(() => decodeResponse(good.subarray(0, cut)), { name: "ProtocolError" }, `cut at ${cut}`);
  }
  const wrongVersion = Uint8Array.from(good);
  wrongVersion[1] = 2;
  assert.throws(() => decodeResponse(wrongVersion), /unsupported protocol version 2/);
  const unknownType = Uint8Array.from(good);
  unknownType[2] = 9;
  assert.throws(() => decodeResponse(unknownType), /unknown response type 9/);
  // An array claiming more elements than there are bytes.
  assert.throws(() => decodeResponse(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 1])), /exceeds the message/);
  // Nesting past 32 levels in a skipped field.
  const deep = [0x95, ...good.subarray(1), ...Array(40).fill(0x91), 0xc0];
  assert.throws(() => decodeResponse(Uint8Array.from(deep)), /deeper than 32/);
});

test("integers of any width are read; u64 values beyond 2^53 are bigints", () => {
  // Broadcast with ack whose ack_timeout_ms is u64::MAX (a caller's Duration::MAX).
  const v = vectors.requests.find((e) => e.name === "broadcast-with-ack");
  const m = { ...asMessage("requests", v.message), ack_timeout_ms: 0xffff_ffff_ffff_ffffn };
  const encoded = encodeRequest(m);
  assert.equal(hex(encoded.subarray(encoded.length - 9)), "cfffffffffffffffff");
  assert.deepStrictEqual(decodeRequest(encoded), m);
  // AckCount 3 written as a uint32 instead of a fixint.
  const count = vectors.responses.find((e) => e.name === "ack-count");
  const wide = bytes(count.hex.slice(0, -2) + "ce00000003");
  assert.equal(decodeResponse(wide).count, 3);
  // A count past u32 is refused, as the Rust reader does.
  assert.throws(() => decodeResponse(bytes(count.hex.slice(0, -2) + "cf0000000100000000")), /out of range/);
});
