// Acceptance suite: the official socket.io-client against three separate
// socket.io server processes (e2e-node) clustered through a real nats-server.
// Every scenario checks exact payloads, exact recipient sets, and that
// non-recipients got nothing. It runs for both parsers and both transports.
//
// Run: node --test e2e/ (after `cargo build -p e2e-node`); scripts/test.sh does both.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { connect, drain, op, startCluster, until } from "./cluster.mjs";

const sorted = (xs) => [...xs].sort();
const events = (list) => list.map(([e, args]) => [e, args]);

for (const parser of ["default", "msgpack"]) {
  for (const transport of ["websocket", "polling"]) {
    describe(`${parser} parser over ${transport}`, () => {
      let cluster;
      let open = [];
      const client = async (node, opts = {}) => {
        const s = await connect(cluster.nodes[node].port, { parser, transport, ...opts });
        open.push(s);
        return s;
      };
      /** One client on each node. */
      const onEveryNode = (opts) => Promise.all([0, 1, 2].map((n) => client(n, opts)));

      before(async () => {
        cluster = await startCluster({ parser });
      });
      after(() => cluster?.stop());
      afterEach(async () => {
        for (const s of open) s.disconnect();
        open = [];
        // let the nodes see the disconnections before the next scenario
        await new Promise((r) => setTimeout(r, 50));
      });

      it("broadcasts to every node once, binary intact", async () => {
        const [a, b, c] = await onEveryNode();
        await op(b, { op: "emit", event: "hello", binary: true });
        const got = await drain(b, [a, b, c]);
        for (const list of got) {
          assert.equal(list.length, 1);
          const [event, args] = list[0];
          assert.equal(event, "hello");
          assert.equal(args[0], 1);
          assert.equal(args[1], "2");
          assert.ok(Buffer.isBuffer(args[2]) || args[2] instanceof ArrayBuffer || ArrayBuffer.isView(args[2]));
          assert.deepEqual([...new Uint8Array(args[2])], [3, 4]);
        }
      });

      it("keeps namespaces apart", async () => {
        const [a, b, c] = await onEveryNode();
        const custom = await client(2, { ns: "/custom" });
        await op(a, { op: "emit", ns: "/custom", event: "custom", data: { x: 1 } });
        const [gotCustom] = await drain(a, [custom], "/custom");
        assert.deepEqual(events(gotCustom), [["custom", [{ x: 1 }]]]);
        const roots = await drain(a, [a, b, c]);
        for (const list of roots) assert.deepEqual(list, [], "a / socket got a /custom message");
      });

      it("reaches rooms, several rooms once, and honours except", async () => {
        const r1 = await client(0, { auth: { rooms: ["r1"] } });
        const r1r2 = await client(1, { auth: { rooms: ["r1", "r2"] } });
        const r2r3 = await client(2, { auth: { rooms: ["r2", "r3"] } });
        const none = await client(2);
        await op(r1, { op: "emit", to: ["r2"], event: "to-r2" });
        await op(r1, { op: "emit", to: ["r1", "r2"], event: "r1-or-r2" });
        await op(r1, { op: "emit", to: ["r1", "r2"], except: ["r3"], event: "not-r3" });
        await op(r1, { op: "emit", except: ["r1"], event: "except-r1" });
        const [g1, g12, g23, gn] = (await drain(r1, [r1, r1r2, r2r3, none])).map((l) => l.map(([e]) => e));
        assert.deepEqual(g1, ["r1-or-r2", "not-r3"]);
        assert.deepEqual(g12, ["to-r2", "r1-or-r2", "not-r3"]);
        assert.deepEqual(g23, ["to-r2", "r1-or-r2", "except-r1"]);
        assert.deepEqual(gn, ["except-r1"]);
      });

      it("keeps local emits on their node and excludes the sender of socket.broadcast", async () => {
        const [a, b, c] = await onEveryNode();
        const a2 = await client(0);
        await op(a, { op: "emit", local: true, event: "local" });
        await op(a, { op: "emit", fromSocket: true, event: "from-a" });
        const got = (await drain(a, [a, a2, b, c])).map((l) => l.map(([e]) => e));
        assert.deepEqual(got, [["local"], ["local", "from-a"], ["from-a"], ["from-a"]]);
      });

      it("delivers volatile emits across nodes", async () => {
        const [a, b, c] = await onEveryNode();
        await op(a, { op: "emit", volatile: true, event: "vol", data: 1 });
        // socketioxide writes volatile packets on their own channel, so they are
        // not ordered with the others: wait for the event itself, not a sentinel.
        for (const s of [a, b, c]) {
          const before = await until(s, ([e, args]) => e === "vol" && args.length === 1 && args[0] === 1);
          assert.deepEqual(before, [], `${s.id} got something else first`);
        }
      });

      it("reaches a socket id on another node", async () => {
        const [a, b, c] = await onEveryNode();
        await op(a, { op: "emit", to: [c.id], event: "direct", data: "c" });
        const got = (await drain(a, [a, b, c])).map(events);
        assert.deepEqual(got, [[], [], [["direct", ["c"]]]]);
      });

      it("collects acks from every node; a silent client times out alone", async () => {
        const [a, b, c] = await onEveryNode();
        c.ackMode = "silent";
        const t0 = Date.now();
        const acks = await op(a, { op: "emitWithAck", event: "q", timeoutMs: 500 });
        assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
        const byId = Object.fromEntries(acks.map((x) => [x.id, x]));
        assert.deepEqual(sorted(Object.keys(byId)), sorted([a.id, b.id, c.id]));
        assert.deepEqual(byId[a.id].value, { from: a.id, event: "q" });
        assert.deepEqual(byId[b.id].value, { from: b.id, event: "q" });
        assert.match(byId[c.id].error, /timeout/i);
        const none = await op(a, { op: "emitWithAck", to: ["empty-room"], event: "q" });
        assert.deepEqual(none, []);
      });

      it("makes matching sockets join, leave and disconnect on every node", async () => {
        const [a, b, c] = await onEveryNode();
        await op(a, { op: "join", rooms: ["all"] });
        const inAll = await op(a, { op: "fetchSockets", to: ["all"] });
        assert.deepEqual(inAll.map((s) => s.id), sorted([a.id, b.id, c.id]));
        await op(a, { op: "join", to: [c.id], rooms: ["third"] });
        await op(a, { op: "leave", to: ["third"], rooms: ["all"] });
        assert.deepEqual((await op(a, { op: "fetchSockets", to: ["all"] })).map((s) => s.id), sorted([a.id, b.id]));
        assert.deepEqual((await op(a, { op: "fetchSockets", to: ["third"] })).map((s) => s.id), [c.id]);
        await op(a, { op: "disconnect", to: ["third"] });
        const [gotC] = await Promise.all([until(c, ([e]) => e === "$disconnect")]);
        assert.deepEqual(gotC, []);
        assert.equal(c.received.length, 0);
        assert.equal(c.connected, false);
        const left = await op(a, { op: "fetchSockets" });
        assert.deepEqual(left.map((s) => s.id), sorted([a.id, b.id]));
      });

      it("fetches sockets and rooms across nodes", async () => {
        const [a, b, c] = await onEveryNode({ auth: { rooms: ["lobby"] } });
        const all = await op(b, { op: "fetchSockets" });
        assert.deepEqual(all.map((s) => s.id), sorted([a.id, b.id, c.id]));
        const owner = Object.fromEntries(all.map((s) => [s.id, s.serverId]));
        assert.equal(owner[a.id], cluster.serverIds[0]);
        assert.equal(owner[b.id], cluster.serverIds[1]);
        assert.equal(owner[c.id], cluster.serverIds[2]);
        assert.deepEqual(await op(c, { op: "rooms" }), sorted(["lobby", a.id, b.id, c.id]));
        const local = await op(c, { op: "fetchSockets", local: true });
        assert.deepEqual(local.map((s) => s.id), [c.id]);
      });

      it("performs every remote socket operation", async () => {
        const [a, , c] = await onEveryNode();
        const remote = (action, extra = {}) => op(a, { op: "remote", sid: c.id, action, ...extra });
        await remote("emit", { event: "direct", data: [1, "x"] });
        assert.deepEqual(await remote("emitWithAck", { event: "ping" }), { from: c.id, event: "ping" });
        await remote("join", { rooms: ["vip"] });
        assert.deepEqual(await remote("rooms"), sorted([c.id, "vip"]));
        await op(a, { op: "emit", to: ["vip"], event: "vip" });
        await remote("leave", { rooms: ["vip"] });
        assert.deepEqual(await remote("rooms"), [c.id]);
        const got = events(await drain(a, [c]).then(([l]) => l));
        assert.deepEqual(got, [
          ["direct", [[1, "x"]]],
          ["ping", [null]],
          ["vip", [null]],
        ]);
        await remote("disconnect");
        await until(c, ([e, [reason]]) => e === "$disconnect" && reason === "io server disconnect");
      });

      it("routes hostile room names exactly", async () => {
        const rooms = ["*", ">", "a.b", "", " ", "$SYS.>", "😀", "_INBOX.>", "x".repeat(5000)];
        const members = await Promise.all(rooms.map((r, i) => client(i % 3, { auth: { rooms: [r] } })));
        const ctl = members[0];
        for (const [i, r] of rooms.entries()) await op(ctl, { op: "emit", to: [r], event: "room", data: i });
        const got = await drain(ctl, members);
        for (const [i, list] of got.entries()) {
          assert.deepEqual(events(list), [["room", [i]]], `room #${i}`);
        }
      });

      it("keeps working when a node dies, and stops waiting for it", async () => {
        const [a, b] = await onEveryNode();
        cluster.nodes[2].kill("SIGKILL");
        const t0 = Date.now();
        const sockets = await op(a, { op: "fetchSockets" });
        const took = Date.now() - t0;
        // The request probes the silent node and NATS answers "no responders" at
        // once; the heartbeat timeout (2 s) and the request timeout (5 s) never pass.
        assert.ok(took < 1000, `fetchSockets waited ${took} ms for the dead node`);
        assert.deepEqual(sockets.map((s) => s.id), sorted([a.id, b.id]));
        await op(a, { op: "emit", event: "still-here" });
        const got = (await drain(a, [a, b])).map((l) => l.map(([e]) => e));
        assert.deepEqual(got, [["still-here"], ["still-here"]]);
        // A node that made no request learns of the death by the heartbeat timeout.
        let info = await op(b, { op: "info" });
        while (info.serverCount !== 2 && Date.now() - t0 < 3500) {
          await new Promise((r) => setTimeout(r, 50));
          info = await op(b, { op: "info" });
        }
        assert.equal(info.serverCount, 2);
        assert.equal(info.pendingRequests, 0);
      });
    });
  }
}
