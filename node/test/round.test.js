// The completion logic without a broker: the Tracker (a port of the protocol
// crate's completion::Tracker) and a request's Round (the Rust emitter's
// request::Round), with the same cases as their Rust tests.
import assert from "node:assert/strict";
import { test } from "node:test";

import { encodeResponse, Res } from "../src/codec.js";
import { IncompleteError, TimeoutError } from "../src/errors.js";
import { MAX_NODES, MAX_PROBES, PROBE_AFTER, PROBE_AGAIN, Round } from "../src/request.js";
import { randomId } from "../src/subjects.js";
import { Expect, Ignored, Tracker } from "../src/tracker.js";

const PROBE_TIMEOUT = 500;
const quiet = { debug() {}, warn() {} };
const res = (origin, type, fields = {}) => ({ type, origin, ...fields });
const ack = (origin) => res(origin, Res.Ack, { sid: randomId(), ok: true, value: { kind: 0, text: "[1]", attachments: null } });

test("tracker: one answer per node, counted once", () => {
  const [a, b] = [randomId(), randomId()];
  const t = new Tracker(Expect.one(Res.Sockets), [a, b]);
  const sockets = (o) => res(o, Res.Sockets, { sockets: [] });
  assert.equal(t.onResponse(sockets(a)), "accept");
  assert.equal(t.onResponse(sockets(a)), Ignored.Duplicate);
  assert.deepEqual(t.owing(), [b]);
  assert.equal(t.onResponse(res(b, Res.Rooms, { rooms: [] })), Ignored.WrongKind);
  assert.ok(t.isSilent(b));
  assert.equal(t.onResponse(sockets(b)), "accept");
  assert.ok(t.isComplete());
});

test("tracker: answers from unexpected nodes are ignored, not added", () => {
  const a = randomId();
  const t = new Tracker(Expect.one(Res.Done), [a]);
  assert.equal(t.onResponse(res(randomId(), Res.Done, { count: 1 })), Ignored.UnexpectedNode);
  assert.ok(!t.isComplete());
  assert.equal(t.size, 1);
});

test("tracker: acks follow their count", () => {
  const [a, b] = [randomId(), randomId()];
  const t = new Tracker(Expect.acks, [a, b]);
  assert.equal(t.onResponse(ack(a)), Ignored.AckOutOfCount, "an ack before the count");
  assert.equal(t.onResponse(res(a, Res.AckCount, { count: 2 })), "accept");
  assert.equal(t.onResponse(res(a, Res.AckCount, { count: 5 })), Ignored.Duplicate, "a second count");
  assert.ok(!t.isSilent(a), "a node that sent its count is not silent");
  assert.equal(t.onResponse(ack(a)), "accept");
  assert.equal(t.onResponse(ack(a)), "accept");
  assert.equal(t.onResponse(ack(a)), Ignored.Duplicate, "past the count");
  assert.equal(t.onResponse(res(a, Res.AckCount, { count: 1 })), Ignored.Duplicate);
  assert.deepEqual(t.owing(), [b]);
  assert.equal(t.onResponse(res(b, Res.AckCount, { count: 0 })), "accept");
  assert.ok(t.isComplete());
});

test("tracker: gone nodes complete and stay gone", () => {
  const [a, b] = [randomId(), randomId()];
  const t = new Tracker(Expect.one(Res.Rooms), [a, b]);
  assert.ok(t.gone(a));
  assert.ok(!t.gone(a));
  assert.equal(t.onResponse(res(a, Res.Rooms, { rooms: [] })), Ignored.Duplicate, "a gone node's late answer");
  t.expectNode(a);
  assert.ok(!t.isSilent(a), "expecting it again does not revive it");
  assert.ok(!t.gone(randomId()));
  t.onResponse(res(b, Res.Rooms, { rooms: [] }));
  assert.ok(t.isComplete());
  assert.ok(!t.gone(b), "b had answered");
  assert.ok(new Tracker(Expect.acks).isComplete(), "nobody to wait for");
});

function fixture(expect = Expect.one(Res.Sockets)) {
  const me = randomId();
  const discover = randomId();
  const request = randomId();
  const at = 1000;
  const round = new Round(me, discover, request, expect, at, PROBE_TIMEOUT, quiet);
  const nodes = (origin, named) => encodeResponse({ type: Res.Nodes, origin, nodes: named });
  return {
    round,
    me,
    discoverAnswer(origin, named = []) {
      assert.equal(round.onReply(discover, false, nodes(origin, named)), undefined);
    },
    requestAnswer(origin) {
      const payload = encodeResponse({ type: Res.Sockets, origin, sockets: [] });
      assert.equal(round.onReply(request, false, payload), undefined);
    },
    reply(token, noResponders, payload = new Uint8Array()) {
      return round.onReply(token, noResponders, payload);
    },
    nodes,
    probesAt: (after) => round.dueProbes(at + after),
    discover,
    request,
  };
}

test("round: a named server found gone by its probe's 503 completes the request", () => {
  const f = fixture();
  const [a, crashed] = [randomId(), randomId()];
  f.discoverAnswer(a, [crashed]);
  f.requestAnswer(a);
  assert.ok(!f.round.isComplete(), "the named server is waited for");
  assert.deepEqual(f.probesAt(10), [], `not probed before ${PROBE_AFTER} ms`);
  const due = f.probesAt(PROBE_AFTER);
  assert.equal(due.length, 1, "only the silent server is probed");
  assert.equal(due[0][0], crashed);
  assert.deepEqual(f.probesAt(PROBE_AFTER * 2), [], "one probe at a time");
  assert.equal(f.reply(due[0][1], true), undefined, "a 503 on a probe is not 'no servers'");
  assert.ok(f.round.isComplete());
  const { nodes, responses } = f.round.finish(2000, "/");
  assert.deepEqual(nodes, [a]);
  assert.equal(responses.length, 1);
});

test("round: a 503 on the Discover or the request means no servers", () => {
  const f = fixture();
  assert.notEqual(f.reply(f.discover, true), undefined);
  assert.notEqual(f.reply(f.request, true), undefined);
  assert.equal(f.reply("SomeOtherReq0000", true), undefined, "a 503 for nothing pending is dropped");
});

test("round: an answer before the server's Discover answer is kept", () => {
  const f = fixture();
  const b = randomId();
  f.requestAnswer(b);
  assert.ok(!f.round.isComplete(), "its Discover answer, which may name others, is still due");
  f.discoverAnswer(b);
  assert.ok(f.round.isComplete());
  assert.equal(f.round.finish(2000, "/").responses[0].origin, b);
});

test("round: only the probed server's own answer proves it alive; alive at the timeout is incomplete", () => {
  const f = fixture();
  const [a, stuck] = [randomId(), randomId()];
  f.discoverAnswer(a, [stuck]);
  f.requestAnswer(a);
  const [[, probe]] = f.probesAt(PROBE_AFTER);
  f.reply(probe, false, f.nodes(randomId(), [])); // a monitor answering in its place
  assert.ok(f.round.probing.has(stuck), "still in flight");
  f.reply(probe, false, f.nodes(stuck, []));
  assert.ok(!f.round.probing.has(stuck), "answered: alive");
  assert.ok(!f.round.isComplete(), "alive, so its answer is still due");
  assert.deepEqual(f.probesAt(PROBE_AFTER + PROBE_AGAIN / 2), [], "not probed again at once");
  const again = f.probesAt(PROBE_AFTER + PROBE_AGAIN);
  assert.equal(again.length, 1, "probed again while silent");
  assert.notEqual(again[0][1], probe, "each probe has its own request id");
  assert.throws(
    () => f.round.finish(2000, "/"),
    (e) => e instanceof IncompleteError && e.missing.length === 1 && e.missing[0] === stuck && e.timeout === 2000,
  );
});

test("round: no answer to a probe within the probe timeout means gone", () => {
  const f = fixture();
  const [a, silent] = [randomId(), randomId()];
  f.discoverAnswer(a, [silent]);
  f.requestAnswer(a);
  assert.equal(f.probesAt(PROBE_AFTER).length, 1);
  assert.deepEqual(f.probesAt(PROBE_AFTER + PROBE_TIMEOUT / 2), []);
  assert.ok(!f.round.isComplete());
  f.probesAt(PROBE_AFTER + PROBE_TIMEOUT);
  assert.ok(f.round.isComplete());
});

test("round: the emitter never waits for itself", () => {
  const f = fixture();
  const a = randomId();
  f.discoverAnswer(a, [f.me]);
  f.requestAnswer(a);
  assert.ok(f.round.isComplete());
  f.discoverAnswer(f.me);
  assert.equal(f.round.discovery.size, 1);
});

test("round: discovery alone returns who answered, a probe answer counting as a Discover answer", () => {
  const f = fixture(null);
  const [a, b, stuck] = [randomId(), randomId(), randomId()];
  f.discoverAnswer(a, [b, stuck]);
  f.discoverAnswer(b, [a]);
  assert.ok(!f.round.isComplete());
  const due = f.probesAt(PROBE_AFTER);
  assert.deepEqual(
    due.map(([t]) => t),
    [stuck],
  );
  f.reply(due[0][1], false, f.nodes(stuck, []));
  assert.ok(f.round.isComplete());
  assert.deepEqual(f.round.finish(2000, "/").nodes, [a, b, stuck]);
});

test("round: nothing answered is a timeout", () => {
  const f = fixture();
  assert.ok(!f.round.isComplete());
  assert.throws(() => f.round.finish(1000, "/chat"), TimeoutError);
});

test("round: names past the bound are not waited for; probes in flight are bounded", () => {
  const f = fixture(null);
  const many = Array.from({ length: MAX_NODES + 10 }, randomId);
  f.discoverAnswer(randomId(), many);
  assert.equal(f.round.discovery.size, MAX_NODES);
  assert.equal(f.probesAt(PROBE_AFTER).length, MAX_PROBES);
});

test("round: undecodable answers are dropped (and logged)", () => {
  const warnings = [];
  const round = new Round(randomId(), "D", "Q", Expect.one(Res.Rooms), 0, PROBE_TIMEOUT, {
    debug() {},
    warn: (m) => warnings.push(m),
  });
  assert.equal(round.onReply("D", false, Uint8Array.from([0x94, 0x02])), undefined);
  assert.equal(round.discovery.size, 0);
  assert.match(warnings[0], /undecodable answer/);
});
