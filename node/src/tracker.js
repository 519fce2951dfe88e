// Which nodes still owe an answer to a request: a port of the Rust protocol
// crate's `completion::Tracker`, shared logic of the adapter and the emitters.
//
// Each expected answer is accepted exactly once; everything else is ignored:
// answers from nodes the request does not wait for, duplicates, a second ack
// count, acks before the count or past it, answers of the wrong type. A forged
// or replayed answer can therefore neither complete a request early nor make it
// wait longer.

import { Res } from "./codec.js";

/** What a request expects from each node: one answer of a type, or an AckCount then that many Acks. */
export const Expect = Object.freeze({
  one: (type) => Object.freeze({ kind: "one", type }),
  acks: Object.freeze({ kind: "acks" }),
});

const WAITING = "waiting";
const ACKS_DUE = "acks-due";
const DONE = "done";
const GONE = "gone";

/** Why an answer was ignored (`onResponse` returns it; `"accept"` otherwise). */
export const Ignored = Object.freeze({
  UnexpectedNode: "from a node the request does not wait for",
  Duplicate: "a duplicate of an answer already received",
  WrongKind: "of a type the request does not expect",
  AckOutOfCount: "an ack outside the node's ack count",
});

const owes = (p) => p.state === WAITING || p.state === ACKS_DUE;

export class Tracker {
  /** @param {{kind: "one", type: number} | {kind: "acks"}} expect */
  constructor(expect, nodes = []) {
    this.expect = expect;
    /** @type {Map<string, {state: string, due: number}>} */
    this.nodes = new Map();
    for (const uid of nodes) this.expectNode(uid);
  }

  /** Also wait for `uid`; nothing changes if it is tracked already (answered, gone, or owing). */
  expectNode(uid) {
    if (!this.nodes.has(uid)) this.nodes.set(uid, { state: WAITING, due: 0 });
  }

  /** Whether `uid` is one of the nodes this request waits (or waited) for. */
  isExpected(uid) {
    return this.nodes.has(uid);
  }

  /** Count a response: `"accept"` if it is an answer its sender still owed, else why it is ignored. */
  onResponse(res) {
    const p = this.nodes.get(res.origin);
    if (!p) return Ignored.UnexpectedNode;
    if (p.state === DONE || p.state === GONE) return Ignored.Duplicate;
    if (this.expect.kind === "one") {
      if (res.type !== this.expect.type) return Ignored.WrongKind;
      p.state = DONE;
      return "accept";
    }
    if (res.type === Res.AckCount) {
      if (p.state !== WAITING) return Ignored.Duplicate;
      if (res.count === 0) p.state = DONE;
      else {
        p.state = ACKS_DUE;
        p.due = res.count;
      }
      return "accept";
    }
    if (res.type === Res.Ack) {
      if (p.state !== ACKS_DUE) return Ignored.AckOutOfCount;
      p.due -= 1;
      if (p.due === 0) p.state = DONE;
      return "accept";
    }
    return Ignored.WrongKind;
  }

  /** `uid` left (or was found gone): stop waiting for it. Tells whether it still owed something. */
  gone(uid) {
    const p = this.nodes.get(uid);
    if (p && owes(p)) {
      p.state = GONE;
      return true;
    }
    return false;
  }

  /** Whether every node answered in full or is gone. */
  isComplete() {
    for (const p of this.nodes.values()) if (owes(p)) return false;
    return true;
  }

  /** The nodes that still owe something. */
  owing() {
    const out = [];
    for (const [uid, p] of this.nodes) if (owes(p)) out.push(uid);
    return out;
  }

  /** Whether `uid` owes something and has sent nothing yet. */
  isSilent(uid) {
    return this.nodes.get(uid)?.state === WAITING;
  }

  /** How many nodes the request waits or waited for. */
  get size() {
    return this.nodes.size;
  }
}
