// A remote control for real socket.io clients, used by the Rust integration tests.
//
// Reads one JSON command per line on stdin and writes one JSON event per line on
// stdout. Binary values travel as {"$bin": "<base64>"} in both directions.
//
// Commands:
//   {"cmd":"connect","id":"c1","url":"http://127.0.0.1:3000","ns":"/","parser":"msgpack"|"default",
//    "transport":"websocket"|"polling","auth":{...}}
//   {"cmd":"emit","id":"c1","event":"name","args":[...]}          -> {"id","type":"emitted"}
//   {"cmd":"emitWithAck","id":"c1","event":"name","args":[...]}   -> {"id","type":"ack","args":[...]}
//   {"cmd":"ack","id":"c1","mode":"reply","value":<any>}|{"mode":"silent"} -> {"id","type":"ack-mode"}
//        how to answer server emits that expect an ack (default: reply with null); the
//        answer says it is in force (the command and a server emit may otherwise race)
//   {"cmd":"disconnect","id":"c1"}
// Events:
//   {"id","type":"connect","sid"} {"id","type":"connect_error","message"}
//   {"id","type":"event","event","args","acked":bool} {"id","type":"disconnect","reason"}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

const clients = new Map();

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function encode(v) {
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  }
  if (Array.isArray(v)) return v.map(encode);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
  }
  return v;
}

function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string" && Object.keys(v).length === 1) return Buffer.from(v.$bin, "base64");
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)]));
  }
  return v;
}

function connect({ id, url, ns = "/", parser = "default", transport = "websocket", auth }) {
  const socket = io(url + ns, {
    forceNew: true,
    reconnection: false,
    transports: [transport],
    upgrade: false,
    parser: parser === "msgpack" ? msgpackParser : undefined,
    auth: auth ?? {},
  });
  const client = { socket, ack: { mode: "reply", value: null } };
  clients.set(id, client);
  socket.on("connect", () => out({ id, type: "connect", sid: socket.id }));
  socket.on("connect_error", (e) => out({ id, type: "connect_error", message: String(e?.message ?? e) }));
  socket.on("disconnect", (reason) => out({ id, type: "disconnect", reason }));
  socket.onAny((event, ...args) => {
    const last = args[args.length - 1];
    const cb = typeof last === "function" ? args.pop() : null;
    out({ id, type: "event", event, args: encode(args), acked: cb !== null });
    if (cb && client.ack.mode === "reply") cb(decode(client.ack.value));
  });
}

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ type: "error", message: `bad command: ${e}` });
    return;
  }
  const client = clients.get(cmd.id);
  try {
    switch (cmd.cmd) {
      case "connect":
        connect(cmd);
        break;
      case "emit":
        client.socket.emit(cmd.event, ...decode(cmd.args ?? []));
        out({ id: cmd.id, type: "emitted" });
        break;
      case "emitWithAck": {
        const res = await client.socket.timeout(5000).emitWithAck(cmd.event, ...decode(cmd.args ?? []));
        out({ id: cmd.id, type: "ack", args: encode([res]) });
        break;
      }
      case "ack":
        client.ack = { mode: cmd.mode, value: cmd.value ?? null };
        out({ id: cmd.id, type: "ack-mode" });
        break;
      case "disconnect":
        client.socket.disconnect();
        break;
      default:
        out({ type: "error", message: `unknown command ${cmd.cmd}` });
    }
  } catch (e) {
    out({ id: cmd.id, type: "error", message: String(e?.message ?? e) });
  }
});
rl.on("close", () => {
  for (const { socket } of clients.values()) socket.disconnect();
  process.exit(0);
});
