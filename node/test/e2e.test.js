// The emitter against a real cluster: 3 Rust socket.io nodes (e2e-node) on a
// real nats-server, with real socket.io clients, for both parsers.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { connect as natsConnect } from "nats";

import {
  AckTimeoutError,
  Emitter,
  NoServersError,
  ReplyError,
  ReservedEventError,
} from "../src/index.js";
import { connect, op, startCluster, until } from "./cluster.js";

const asBytes = (x) => [...new Uint8Array(x.buffer ?? x, x.byteOffset ?? 0, x.byteLength)];
const isBinary = (x) => x instanceof ArrayBuffer || ArrayBuffer.isView(x);

for (const parser of ["default", "msgpack"]) {
  describe(`e2e, ${parser} parser`, () => {
    let cluster;
    let nc;
    let emitter;
    /** Two clients per node: [node0: r1, r2], [node1: r1+r2, none], [node2: r1, vip]. */
    let clients;
    const roomsOf = [["r1"], ["r2"], ["r1", "r2"], [], ["r1"], ["vip"]];

    /** Emit a marker from the emitter and return what each client received before it (same publisher: in order). */
    async function drain(sockets = clients, em = emitter) {
      const marker = `end-${Math.random().toString(36).slice(2)}`;
      await em.emit(marker);
      return Promise.all(sockets.map((s) => until(s, ([e]) => e === marker)));
    }

    const names = (events) => events.map(([e]) => e);

    before(async () => {
      cluster = await startCluster({ parser });
      nc = await natsConnect({ servers: cluster.nats.url });
      emitter = new Emitter(nc, { parser, requestTimeout: 3000 });
      clients = await Promise.all(
        roomsOf.map((rooms, i) => connect(cluster.nodes[Math.floor(i / 2)].port, { parser, auth: { rooms } })),
      );
    });

    after(async () => {
      for (const s of clients ?? []) s.disconnect();
      await nc?.close();
      cluster?.stop();
    });

    test("emit reaches every socket of every node", async () => {
      await emitter.emit("news", "hello", 1, { k: [true, null] });
      const got = await drain();
      for (const events of got) assert.deepEqual(events, [["news", ["hello", 1, { k: [true, null] }]]]);
    });

    test("to rooms (accumulated, each socket once), except, and to a socket id", async () => {
      await emitter.to("r1").to(["r2"]).emit("a");
      await emitter.in("vip").emit("b");
      await emitter.except("r1").emit("c");
      await emitter.to("r2").except("r1").emit("d");
      await emitter.to(clients[3].id).emit("e", "just you");
      const got = await drain();
      assert.deepEqual(got.map(names), [
        ["a"],
        ["a", "c", "d"],
        ["a"],
        ["c", "e"],
        ["a"],
        ["b", "c"],
      ]);
      assert.deepEqual(got[3][1], ["e", ["just you"]]);
    });

    test("binary arguments arrive as binary, at any depth", async () => {
      const bin = Buffer.from([1, 2, 3]);
      await emitter.to(clients[0].id).emit("file", bin, { nested: new Uint8Array([4, 5]), n: 1 }, "text");
      const [[[event, args]], ...others] = await drain();
      for (const events of others) assert.deepEqual(events, []);
      assert.equal(event, "file");
      assert.ok(isBinary(args[0]), `got ${typeof args[0]}`);
      assert.deepEqual(asBytes(args[0]), [1, 2, 3]);
      assert.ok(isBinary(args[1].nested));
      assert.deepEqual(asBytes(args[1].nested), [4, 5]);
      assert.equal(args[1].n, 1);
      assert.equal(args[2], "text");
    });

    test("volatile emits reach ready clients", async () => {
      // socketioxide sends volatile packets on a channel of their own, which
      // keeps only the latest one: not ordered with the others (no drain
      // marker), and one dropped if another replaces it before it is written.
      // One at a time to an idle client arrives.
      await emitter.volatile.to("vip").emit("v", 1);
      await until(clients[5], ([e, args]) => e === "v" && args[0] === 1);
      await emitter.to("vip").volatile.emit("v", 2);
      await until(clients[5], ([e, args]) => e === "v" && args[0] === 2);
      const got = await drain();
      for (const events of got) assert.deepEqual(events, []);
    });

    test("emitWithAck collects every client's ack across the 3 nodes", async () => {
      const started = performance.now();
      const acks = await emitter.emitWithAck("question", "ready?");
      const elapsed = performance.now() - started;
      assert.equal(acks.length, clients.length);
      const bySid = new Map(acks.map((a) => [a.sid, a]));
      for (const [i, s] of clients.entries()) {
        const a = bySid.get(s.id);
        assert.ok(a, `no ack from ${s.id}`);
        assert.equal(a.ok, true);
        assert.deepEqual(a.value, { from: s.id, event: "question" });
        assert.equal(a.serverId, cluster.serverIds[Math.floor(i / 2)]);
      }
      assert.ok(elapsed < 1000, `took ${elapsed} ms`);
      // to a room, with a binary ack
      clients[5].ackWith = () => Buffer.from([7, 8]);
      try {
        const vip = await emitter.to("vip").emitWithAck("bin?");
        assert.equal(vip.length, 1);
        assert.ok(Buffer.isBuffer(vip[0].value));
        assert.deepEqual([...vip[0].value], [7, 8]);
      } finally {
        clients[5].ackWith = (event) => ({ from: clients[5].id, event });
      }
      await drain();
    });

    test("a client that does not ack gets its timeout error; the others their value", async () => {
      const silent = clients[2];
      const ackWith = silent.ackWith;
      silent.ackWith = null;
      try {
        const started = performance.now();
        const acks = await emitter.timeout(300).emitWithAck("question");
        const elapsed = performance.now() - started;
        assert.equal(acks.length, clients.length);
        for (const a of acks) {
          if (a.sid === silent.id) {
            assert.equal(a.ok, false);
            assert.ok(a.error instanceof AckTimeoutError, String(a.error));
          } else {
            assert.equal(a.ok, true, String(a.error));
          }
        }
        assert.ok(elapsed >= 250 && elapsed < 1500, `took ${elapsed} ms`);
      } finally {
        silent.ackWith = ackWith;
      }
      await drain();
    });

    test("fetchSockets, allRooms, serverCount", async () => {
      const sockets = await emitter.fetchSockets();
      const expected = clients.map((s, i) => ({ id: s.id, serverId: cluster.serverIds[Math.floor(i / 2)], ns: "/" }));
      const byId = (a, b) => a.id.localeCompare(b.id);
      assert.deepEqual(sockets.sort(byId), expected.sort(byId));
      const inR2 = await emitter.to("r2").fetchSockets();
      assert.deepEqual(inR2.map((s) => s.id).sort(), [clients[1].id, clients[2].id].sort());
      const rooms = await emitter.allRooms();
      assert.deepEqual(rooms, [...clients.map((s) => s.id), "r1", "r2", "vip"].sort());
      assert.deepEqual(await emitter.to("vip").rooms(), [clients[5].id, "vip"].sort());
      assert.equal(await emitter.serverCount(), 3);
      assert.deepEqual((await emitter.serverIds()).sort(), [...cluster.serverIds].sort());
    });

    test("socketsJoin and socketsLeave, seen by the clients and by fetchSockets/rooms", async () => {
      await emitter.to("r2").socketsJoin(["joined", "other"]);
      const members = (await emitter.in("joined").fetchSockets()).map((s) => s.id).sort();
      assert.deepEqual(members, [clients[1].id, clients[2].id].sort());
      assert.ok((await emitter.allRooms()).includes("joined"));
      await emitter.to("joined").emit("welcome");
      assert.deepEqual((await drain()).map(names), [[], ["welcome"], ["welcome"], [], [], []]);

      await emitter.to(clients[1].id).socketsLeave("joined");
      assert.deepEqual((await emitter.in("joined").fetchSockets()).map((s) => s.id), [clients[2].id]);
      await emitter.socketsLeave(["joined", "other"]);
      const rooms = await emitter.allRooms();
      assert.ok(!rooms.includes("joined") && !rooms.includes("other"), rooms.join());
      await emitter.to("joined").emit("welcome");
      assert.deepEqual((await drain()).map(names), [[], [], [], [], [], []]);
    });

    test("serverSideEmit reaches every node; their clients receive `relayed` with the data as the nodes decode it", async () => {
      await emitter.serverSideEmit("relay", { s: "é", x: 1 });
      await emitter.serverSideEmit("relay", "a", 2);
      await emitter.serverSideEmit("relay");
      for (const s of clients) {
        const seen = [];
        for (let i = 0; i < 3; i++) {
          await until(s, ([e, args]) => e === "relayed" && seen.push(args[0]));
        }
        // Each node runs the handlers of server events concurrently: in any order.
        const key = (p) => JSON.stringify(p.data);
        assert.deepEqual(seen.map(key).sort(), [{ s: "é", x: 1 }, ["a", 2], null].map((data) => key({ data })).sort());
        for (const p of seen) assert.equal(p.from, emitter.uid);
      }
    });

    test("serverSideEmitWithAck and customRequest collect one answer per node", async () => {
      const replies = await emitter.serverSideEmitWithAck("relay", "hi");
      assert.deepEqual(replies.map((r) => r.serverId).sort(), [...cluster.serverIds].sort());
      for (const r of replies) {
        assert.equal(r.ok, true);
        assert.deepEqual(r.value, { node: r.serverId });
      }
      for (const s of clients) await until(s, ([e]) => e === "relayed");
      const unknown = await emitter.serverSideEmitWithAck("no-such-handler");
      assert.equal(unknown.length, 3);
      for (const r of unknown) {
        assert.equal(r.ok, false);
        assert.ok(r.error instanceof ReplyError);
        assert.match(r.error.message, /no handler for server event "no-such-handler"/);
      }
      const custom = await emitter.customRequest({ a: [1, "b"] });
      assert.equal(custom.length, 3);
      for (const r of custom) assert.deepEqual(r.value, { node: r.serverId, data: { a: [1, "b"] } });
    });

    test("another namespace: of() adds the leading slash", async () => {
      const custom = await connect(cluster.nodes[1].port, { parser, ns: "/custom", auth: { rooms: ["c"] } });
      try {
        const em = emitter.of("custom");
        assert.equal(em.nsp, "/custom");
        await em.to("c").emit("in-custom", 42);
        await until(custom, ([e, args]) => e === "in-custom" && args[0] === 42);
        const sockets = await em.fetchSockets();
        assert.deepEqual(sockets, [{ id: custom.id, serverId: cluster.serverIds[1], ns: "/custom" }]);
        assert.equal(await em.serverCount(), 3);
        // Nothing reached the sockets of `/`.
        assert.deepEqual((await drain()).map(names), [[], [], [], [], [], []]);
      } finally {
        custom.disconnect();
      }
    });

    test("reserved event names are rejected", async () => {
      for (const ev of ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]) {
        await assert.rejects(emitter.emit(ev), ReservedEventError);
        await assert.rejects(emitter.to("r1").emitWithAck(ev), ReservedEventError);
        await assert.rejects(emitter.serverSideEmit(ev), ReservedEventError);
      }
      await assert.rejects(emitter.emit("disconnect"), /"disconnect" is a reserved socket.io event name/);
      assert.deepEqual((await drain()).map(names), [[], [], [], [], [], []]);
    });

    test("a namespace no server serves: NoServersError", async () => {
      const nobody = emitter.of("/nobody");
      for (const ask of [() => nobody.fetchSockets(), () => nobody.serverCount(), () => nobody.emitWithAck("x")]) {
        const started = performance.now();
        await assert.rejects(ask(), (e) => e instanceof NoServersError && /"\/nobody"/.test(e.message));
        assert.ok(performance.now() - started < 500);
      }
      // A plain emit has nobody to tell it: it is published and lost.
      await nobody.emit("lost");
      const other = new Emitter(nc, { prefix: "other-app", parser });
      await assert.rejects(other.fetchSockets(), /with prefix "other-app"/);
    });

    test("disconnectSockets, seen by the client and by fetchSockets", async () => {
      const victim = await connect(cluster.nodes[2].port, { parser, auth: { rooms: ["doomed"] } });
      assert.equal((await emitter.to("doomed").fetchSockets()).length, 1);
      await emitter.to("doomed").disconnectSockets(true);
      await until(victim, ([e]) => e === "$disconnect");
      assert.deepEqual(await emitter.to("doomed").fetchSockets(), []);
      assert.equal((await emitter.fetchSockets()).length, clients.length);
    });

    test("the emitter is never counted as a server", async () => {
      assert.equal(await emitter.serverCount(), 3);
      const ctls = await Promise.all(cluster.nodes.map((n) => connect(n.port, { parser })));
      try {
        for (const c of ctls) {
          const info = await op(c, { op: "info" });
          assert.equal(info.serverCount, 3);
        }
      } finally {
        for (const c of ctls) c.disconnect();
      }
      // The servers see the control clients go before the next test counts sockets.
      const deadline = Date.now() + 5000;
      while ((await emitter.fetchSockets()).length !== clients.length) {
        assert.ok(Date.now() < deadline, "the control clients never left");
        await new Promise((r) => setTimeout(r, 20));
      }
    });

    test("a node killed with SIGKILL costs a request a probe, not its timeout", async () => {
      const [killed] = cluster.nodes.splice(2, 1);
      const killedId = cluster.serverIds[2];
      // During a request: the node may or may not answer before it dies.
      let started = performance.now();
      const during = emitter.fetchSockets();
      killed.kill("SIGKILL");
      const sockets = await during;
      let elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `took ${elapsed} ms (request timeout 3000 ms)`);
      assert.ok(sockets.length === 4 || sockets.length === 6, `got ${sockets.length} sockets`);
      await new Promise((resolve) => {
        if (killed.proc.exitCode !== null || killed.proc.signalCode !== null) resolve();
        else killed.proc.once("exit", resolve);
      });
      // After: the other nodes still name it (until their heartbeat timeout); the probe finds it gone.
      started = performance.now();
      const left = await emitter.fetchSockets();
      elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `took ${elapsed} ms`);
      assert.deepEqual(left.map((s) => s.id).sort(), clients.slice(0, 4).map((s) => s.id).sort());
      assert.ok(!left.some((s) => s.serverId === killedId));
      const acks = await emitter.emitWithAck("still-there?");
      assert.equal(acks.length, 4);
      assert.equal(await emitter.serverCount(), 2);
    });
  });
}
