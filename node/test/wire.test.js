// The emitter on a real nats-server, against fake nodes written with this
// package's codec: what it publishes, and how it completes requests when nodes
// are silent, crashed, duplicated, forged or hidden behind a monitor.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import { connect as natsConnect } from "nats";

import { decodeRequest, encodeResponse, Flags, Req, Res } from "../src/codec.js";
import {
  ConnectionError,
  Emitter,
  IncompleteError,
  InvalidPrefixError,
  NoServersError,
  PayloadTooLargeError,
  ReservedEventError,
  TimeoutError,
} from "../src/index.js";
import { NsSubjects, randomId } from "../src/subjects.js";
import { sleep, startNats } from "./cluster.js";

const ID = /^[A-Za-z0-9_-]{16}$/;

/**
 * A fake node of namespace `/`: answers Discover (and probes) with Nodes naming
 * `names`, and requests with `answer(req)` (a list of responses to publish, or
 * nothing).
 */
function fakeNode(nc, { uid = randomId(), names = [], answer = () => [], prefix = "socket.io" } = {}) {
  const s = new NsSubjects(prefix, "/");
  const seen = [];
  const handle = (err, msg) => {
    if (err) return;
    const req = decodeRequest(msg.data);
    seen.push(req);
    if (!msg.reply) return;
    if (req.type === Req.Discover) {
      msg.respond(encodeResponse({ type: Res.Nodes, origin: uid, nodes: names }));
      return;
    }
    for (const res of answer(req)) nc.publish(msg.reply, encodeResponse({ origin: uid, ...res }));
  };
  const subs = [nc.subscribe(`${s.base}.b.*`, { callback: handle }), nc.subscribe(`${s.base}.n.${uid}.*`, { callback: handle })];
  return {
    uid,
    seen,
    stop() {
      for (const sub of subs) sub.unsubscribe();
    },
  };
}

/** Every message published under the prefix, decoded, with its subject and reply subject. */
function monitor(nc, prefix = "socket.io") {
  const msgs = [];
  const sub = nc.subscribe(`${prefix}.>`, {
    callback: (err, msg) => {
      // Requests only: answers (`{prefix}.{ns}.r.*.*`) are the emitter's to read.
      if (err || msg.subject.split(".").at(-3) === "r") return;
      msgs.push({ subject: msg.subject, reply: msg.reply, req: decodeRequest(msg.data) });
    },
  });
  return { msgs, stop: () => sub.unsubscribe() };
}

describe("emitter on a nats-server with fake nodes", () => {
  let nats;
  let nc;
  let nodeConn;
  const fakes = [];

  before(async () => {
    nats = await startNats();
    nc = await natsConnect({ servers: nats.url });
    nodeConn = await natsConnect({ servers: nats.url });
  });

  after(async () => {
    await nc?.close();
    await nodeConn?.close();
    nats?.stop();
  });

  beforeEach(async () => {
    for (const f of fakes.splice(0)) f.stop();
    await nodeConn.flush();
  });

  const fake = (opts) => {
    const f = fakeNode(nodeConn, opts);
    fakes.push(f);
    return f;
  };

  test("nats.js asks the server for 'no responders' statuses", () => {
    assert.equal(nc.info.headers, true);
  });

  test("what an emit publishes: the broadcast subject, no reply, the operator's options", async () => {
    const mon = monitor(nodeConn);
    await nodeConn.flush();
    const emitter = new Emitter(nc);
    assert.match(emitter.uid, ID);
    await emitter.to("r1").in(["r2", "r1"]).except("muted").volatile.emit("ev", Buffer.from([1, 2]), { b: new Uint8Array([3]) });
    await emitter.of("chat.v2").emit("plain", "x");
    await emitter.to("vip").socketsJoin(["a", "b"]);
    await emitter.socketsLeave("a");
    await emitter.except("staff").disconnectSockets(true);
    await emitter.serverSideEmit("reload", { key: "a" });
    await emitter.flush();
    await nodeConn.flush();
    await sleep(20);
    mon.stop();
    const [bin, plain, join, leave, disc, server] = mon.msgs;
    assert.equal(mon.msgs.length, 6);
    assert.equal(bin.subject, `socket.io._2F.b.${emitter.uid}`);
    assert.equal(plain.subject, `socket.io._2Fchat_2Ev2.b.${emitter.uid}`);
    for (const m of mon.msgs) {
      assert.equal(m.reply, "", "no reply subject");
      assert.equal(m.req.id, null);
      assert.equal(m.req.origin, emitter.uid);
    }
    assert.deepEqual(bin.req.opts, { flags: Flags.Broadcast | Flags.Volatile, rooms: ["r1", "r2"], except: ["muted"], sid: null, server_id: null });
    assert.equal(bin.req.packet.type, 5, "binary event");
    assert.equal(bin.req.packet.ns, "/");
    assert.deepEqual(bin.req.packet.data, {
      kind: 0,
      text: '["ev",{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]',
      attachments: [Uint8Array.from([1, 2]), Uint8Array.from([3])],
    });
    assert.deepEqual(plain.req.packet, { ns: "/chat.v2", type: 2, data: { kind: 0, text: '["plain","x"]', attachments: null }, ack: null, error: null });
    assert.equal(plain.req.opts.flags, Flags.Broadcast);
    assert.deepEqual([join.req.type, join.req.rooms, join.req.opts.rooms], [Req.AddSockets, ["a", "b"], ["vip"]]);
    assert.deepEqual([leave.req.type, leave.req.rooms, leave.req.opts.rooms], [Req.DelSockets, ["a"], []]);
    assert.deepEqual([disc.req.type, disc.req.opts.except], [Req.DisconnectSockets, ["staff"]]);
    assert.equal(server.req.type, Req.ServerEvent);
    assert.equal(server.req.event, "reload");
    assert.deepEqual(Buffer.from(server.req.data).toString("hex"), "81a36b6579a161", "the map {key: 'a'}, as in the vectors");
  });

  test("the msgpack parser's form: [1, bin of the MessagePack array], type 2 even with binary", async () => {
    const mon = monitor(nodeConn);
    await nodeConn.flush();
    const emitter = new Emitter(nc, { parser: "msgpack" });
    await emitter.emit("news", "hi", 1);
    await emitter.emit("file", Buffer.from([1, 2, 3]));
    await emitter.flush();
    await sleep(20);
    mon.stop();
    const [news, file] = mon.msgs;
    assert.deepEqual(news.req.packet.data, { kind: 1, bytes: Uint8Array.from(Buffer.from("93a46e657773a2686901", "hex")) });
    assert.equal(news.req.packet.type, 2);
    assert.equal(Buffer.from(file.req.packet.data.bytes).toString("hex"), "92a466696c65c403010203");
    assert.equal(file.req.packet.type, 2);
  });

  test("a request: Discover then the request, reply subjects under a fresh requester id; probes on node subjects; never Hello or Heartbeat", async () => {
    const ghost = randomId();
    const a = fake({ names: [ghost], answer: (req) => (req.type === Req.FetchSockets ? [{ type: Res.Sockets, sockets: [] }] : []) });
    const mon = monitor(nodeConn);
    await nodeConn.flush();
    // The monitor listens on the ghost's subject too: no 503, its probe times out.
    const emitter = new Emitter(nc, { requestTimeout: 300, probeTimeout: 100 });
    try {
      await emitter.fetchSockets();
      await emitter.fetchSockets();
      // The fake never acks: alive (it answers probes), so incomplete at 300 ms + the ack timeout.
      await assert.rejects(emitter.timeout(100).emitWithAck("q"), IncompleteError);
      await sleep(20);
    } finally {
      mon.stop();
    }
    const types = new Set(mon.msgs.map((m) => m.req.type));
    assert.ok(!types.has(Req.Hello) && !types.has(Req.Heartbeat), [...types].join());
    const [discover, fetch] = mon.msgs;
    assert.equal(discover.req.type, Req.Discover);
    assert.equal(fetch.req.type, Req.FetchSockets);
    const [, , , , requester, discoverId] = discover.reply.split(".");
    assert.match(requester, ID);
    assert.notEqual(requester, emitter.uid);
    assert.equal(discover.reply, `socket.io._2F.r.${requester}.${discoverId}`);
    assert.equal(discoverId, discover.req.id);
    assert.equal(fetch.reply, `socket.io._2F.r.${requester}.${fetch.req.id}`);
    const probes = mon.msgs.filter((m) => m.subject.includes(".n."));
    assert.ok(probes.length >= 1);
    assert.equal(probes[0].subject, `socket.io._2F.n.${ghost}.${emitter.uid}`);
    assert.equal(probes[0].req.type, Req.Discover);
    const requesters = mon.msgs.filter((m) => m.req.type === Req.FetchSockets).map((m) => m.reply.split(".")[4]);
    assert.equal(new Set(requesters).size, 2, "a fresh requester id per request");
    const withAck = mon.msgs.find((m) => m.req.type === Req.BroadcastWithAck);
    assert.equal(withAck.req.ack_timeout_ms, 100);
    assert.ok(a.seen.length > 0);
  });

  test("a server named by another but gone is found by its probe's 503: complete in well under the timeout", async () => {
    const ghost = randomId();
    const sid = randomId();
    const a = fake({
      names: [ghost],
      answer: (req) => (req.type === Req.FetchSockets ? [{ type: Res.Sockets, sockets: [{ id: sid, server_id: "x".repeat(16), ns: "/" }] }] : []),
    });
    await nodeConn.flush();
    const emitter = new Emitter(nc, { requestTimeout: 3000 });
    const started = performance.now();
    const sockets = await emitter.fetchSockets();
    const elapsed = performance.now() - started;
    assert.deepEqual(sockets, [{ id: sid, serverId: "x".repeat(16), ns: "/" }]);
    assert.ok(elapsed < 500, `took ${elapsed} ms`);
    assert.deepEqual(await emitter.serverIds(), [a.uid]);
  });

  test("a live server that answers probes but not the request: IncompleteError naming it, not a partial answer", async () => {
    // As in a real cluster, each names the other.
    const [answeringId, silentId] = [randomId(), randomId()];
    fake({ uid: answeringId, names: [silentId], answer: (req) => (req.type === Req.AllRooms ? [{ type: Res.Rooms, rooms: ["x"] }] : []) });
    const silent = fake({ uid: silentId, names: [answeringId] });
    await nodeConn.flush();
    const emitter = new Emitter(nc, { requestTimeout: 400 });
    const started = performance.now();
    await assert.rejects(emitter.allRooms(), (e) => {
      assert.ok(e instanceof IncompleteError, String(e));
      assert.deepEqual(e.missing, [silent.uid]);
      assert.match(e.message, new RegExp(`after 400 ms without the answers of live servers ${silent.uid}`));
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 390 && elapsed < 1000, `took ${elapsed} ms`);
    // Discovery alone does not need their answers.
    assert.equal(await emitter.serverCount(), 2);
  });

  test("acks: counted against each node's AckCount; duplicates, early acks, extra acks and strangers ignored", async () => {
    const sid1 = randomId();
    const sid2 = randomId();
    const value = (text) => ({ kind: 0, text, attachments: null });
    const a = fake({
      answer: (req) =>
        req.type === Req.BroadcastWithAck
          ? [
              { type: Res.Ack, sid: randomId(), ok: true, value: value('["early"]') },
              { type: Res.AckCount, count: 2 },
              { type: Res.AckCount, count: 5 },
              { type: Res.Ack, sid: sid1, ok: true, value: value('["one",2]') },
              { type: Res.Ack, sid: sid2, ok: false, error: Uint8Array.from(Buffer.from("81a6536f636b6574a6436c6f736564", "hex")) },
              { type: Res.Ack, sid: randomId(), ok: true, value: value('["extra"]') },
            ]
          : [],
    });
    await nodeConn.flush();
    const emitter = new Emitter(nc, { requestTimeout: 2000 });
    const acks = await emitter.emitWithAck("q");
    assert.equal(acks.length, 2);
    assert.deepEqual(acks[0], { sid: sid1, serverId: a.uid, ok: true, value: "one", args: ["one", 2] });
    assert.equal(acks[1].ok, false);
    assert.equal(acks[1].sid, sid2);
    assert.deepEqual(acks[1].error.detail, { Socket: "Closed" });
    assert.match(acks[1].error.message, /Socket/);
  });

  test("a monitor subscribed to the whole prefix: no 503, so probes time out and requests with no server time out", async () => {
    const mon = monitor(nodeConn);
    await nodeConn.flush();
    try {
      const emitter = new Emitter(nc, { requestTimeout: 300, probeTimeout: 100 });
      let started = performance.now();
      await assert.rejects(emitter.fetchSockets(), TimeoutError);
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 800, `took ${elapsed} ms`);
      const ghost = randomId();
      fake({ names: [ghost], answer: (req) => (req.type === Req.FetchSockets ? [{ type: Res.Sockets, sockets: [] }] : []) });
      await nodeConn.flush();
      const slow = new Emitter(nc, { requestTimeout: 3000, probeTimeout: 100 });
      started = performance.now();
      assert.deepEqual(await slow.fetchSockets(), []);
      const took = performance.now() - started;
      assert.ok(took >= 140 && took < 600, `the ghost's probe timed out: took ${took} ms`);
    } finally {
      mon.stop();
    }
  });

  test("no server at all: NoServersError at once", async () => {
    const emitter = new Emitter(nc, { prefix: "nobody.here" });
    const started = performance.now();
    await assert.rejects(emitter.fetchSockets(), NoServersError);
    await assert.rejects(emitter.serverCount(), NoServersError);
    await assert.rejects(emitter.serverSideEmitWithAck("x"), /no socket.io server serves namespace "\/" with prefix "nobody.here"/);
    assert.ok(performance.now() - started < 500);
  });

  test("a message over max_payload is refused with PayloadTooLargeError", async () => {
    const emitter = new Emitter(nc);
    const max = nc.info.max_payload;
    const big = Buffer.alloc(max + 1);
    await assert.rejects(emitter.emit("big", big), (e) => e instanceof PayloadTooLargeError && e.max === max && e.size > max);
    await assert.rejects(emitter.emitWithAck("big", big), PayloadTooLargeError);
    await assert.rejects(emitter.serverSideEmit("big", big), PayloadTooLargeError);
  });

  test("bad arguments are refused clearly", async () => {
    assert.throws(() => new Emitter(nc, { prefix: "app.*" }), InvalidPrefixError);
    assert.throws(() => new Emitter(nc, { prefix: "" }), InvalidPrefixError);
    assert.throws(() => new Emitter(nc, { parser: "json" }), /parser must be "default" or "msgpack"/);
    assert.throws(() => new Emitter({}), /must be a NATS connection/);
    const emitter = new Emitter(nc);
    await assert.rejects(emitter.emit("x", () => {}), /emit\(\) takes no callback: use emitWithAck\(\)/);
    await assert.rejects(emitter.emit("removeListener"), ReservedEventError);
    assert.throws(() => emitter.to(1), TypeError);
    assert.equal(emitter.of("chat").nsp, "/chat");
    assert.equal(emitter.of("/chat").of("x").nsp, "/x");
    assert.equal(emitter.of("chat").uid, emitter.uid, "one id per emitter");
  });

  test("a connection lost during a request: ConnectionError, not what came as if complete", async () => {
    fake({
      answer: (req) => (req.type === Req.FetchSockets ? [{ type: Res.Sockets, sockets: [] }] : []),
    });
    // Reconnecting at once: the request's messages or their answers are lost
    // with the old connection, and the request must not end as if complete.
    const own = await natsConnect({ servers: nats.url, reconnectTimeWait: 10 });
    try {
      const slow = new Emitter(own, { requestTimeout: 500 });
      assert.equal(await slow.serverCount(), 1, "answers before the reconnection");
      const pending = slow.fetchSockets();
      await own.reconnect();
      await assert.rejects(pending, (e) => e instanceof ConnectionError && /lost during the request/.test(e.message));
      // After it, requests work again.
      assert.deepEqual(await slow.fetchSockets(), []);
    } finally {
      await own.close();
    }
  });

  test("a closed connection: ConnectionError", async () => {
    const own = await natsConnect({ servers: nats.url });
    const emitter = new Emitter(own);
    await own.close();
    await assert.rejects(emitter.emit("x"), ConnectionError);
    await assert.rejects(emitter.fetchSockets(), ConnectionError);
    await assert.rejects(emitter.flush(), ConnectionError);
  });
});
