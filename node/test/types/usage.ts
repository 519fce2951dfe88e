// Compiled (not run) by types.test.js: the hand-written declarations describe
// the package as its users import it.
import { connect } from "nats";
import {
  type AckResult,
  AckTimeoutError,
  Emitter,
  type EmitterOptions,
  IncompleteError,
  NoServersError,
  type SocketInfo,
} from "@socketioxide-nats/emitter";
import { decodeResponse, encodeRequest, nsToken, Req, Tracker, Expect, Res } from "@socketioxide-nats/emitter/protocol";

declare function log(...args: unknown[]): void;

export async function usage(): Promise<void> {
  const nc = await connect({ servers: "nats://127.0.0.1:4222" });
  const options: EmitterOptions = { prefix: "socket.io", parser: "msgpack", requestTimeout: 2000, ackTimeout: 1000, probeTimeout: 500 };
  const emitter = new Emitter(nc, options);
  const chat: Emitter = emitter.of("chat");
  await chat.to("room1").in(["room2"]).except("banned").volatile.emit("news", "hello", new Uint8Array([1]));
  const acks: AckResult<{ ok: boolean }>[] = await chat.timeout(1000).emitWithAck<{ ok: boolean }>("ready?");
  for (const a of acks) {
    if (a.ok) {
      const ok: boolean = a.value.ok;
      void ok;
    } else if (a.error instanceof AckTimeoutError) {
      log(a.sid, "timed out");
    }
  }
  const sockets: SocketInfo[] = await chat.fetchSockets();
  const rooms: string[] = await chat.allRooms();
  const count: number = await emitter.serverCount();
  await chat.socketsJoin("vip");
  await chat.socketsLeave(["vip"]);
  await chat.disconnectSockets(true);
  await emitter.serverSideEmit("reload", { key: "a" });
  const replies = await emitter.serverSideEmitWithAck<{ node: string }>("relay", 1);
  for (const r of replies) if (r.ok) log(r.value.node);
  try {
    await emitter.of("/nobody").fetchSockets();
  } catch (e) {
    if (e instanceof NoServersError) log(e.ns, e.prefix);
    if (e instanceof IncompleteError) log(e.missing.join());
  }
  await emitter.flush();
  log(sockets.length, rooms, count, emitter.uid);

  const bytes = encodeRequest({ type: Req.Discover, origin: emitter.uid, id: null });
  const res = decodeResponse(bytes);
  const t = new Tracker(Expect.one(Res.Sockets), [res.origin]);
  log(t.onResponse(res), nsToken("/"));
}
