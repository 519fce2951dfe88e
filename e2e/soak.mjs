// Soak: a 3-node cluster (separate e2e-node processes over one nats-server) under
// sustained load for a configurable time, with node restarts. Not part of the test
// run; `bash scripts/soak.sh --minutes 10` builds the release node and runs it.
//
// Load: numbered broadcasts to every client from a rotating node, room joins and
// leaves of random sockets from random nodes, fetch_sockets and rooms requests, and
// every `--restart-every` seconds node 1 or 2 killed (alternately SIGINT, a clean
// close, and SIGKILL, a crash) and started again, its clients reconnecting. Node 0
// is never restarted, so its memory over the whole run shows any leak.
//
// Reports: each node's resident memory over time; broadcasts lost by clients of
// nodes that were not restarting (must be 0: NATS was healthy all along); request
// latency; and, after the load stops, each node's pending requests and NATS
// subscriptions compared with their idle values before the load (must be equal).
// Exit code 1 if a check fails. JSON in artifacts/soak/soak.json.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, op, startNats, startNode } from "./cluster.mjs";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    clients: { type: "string", default: "60" },
    rate: { type: "string", default: "50" }, // broadcasts per second
    "restart-every": { type: "string", default: "60" }, // seconds
    "sample-every": { type: "string", default: "10" }, // seconds
  },
});
const minutes = Number(args.minutes);
const clientCount = Number(args.clients);
const rate = Number(args.rate);
const restartEvery = Number(args["restart-every"]) * 1000;
const sampleEvery = Number(args["sample-every"]) * 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pick = (a) => a[Math.floor(Math.random() * a.length)];
const rssKiB = (pid) => {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]);
  } catch {
    return null;
  }
};

const nats = await startNats();
const t0 = Date.now();
const slots = [0, 1, 2].map((i) => ({ i, node: null, ctl: null, clients: [], restarts: [], busy: false }));

async function up(slot) {
  slot.node = await startNode(nats.url, "default");
  slot.ctl = await connect(slot.node.port);
  slot.node.proc.on("exit", () => (slot.down = true));
  slot.down = false;
}

async function clusterFormed() {
  const deadline = Date.now() + 15_000;
  for (const s of slots) {
    while ((await op(s.ctl, { op: "info" })).serverCount !== slots.length) {
      if (Date.now() > deadline) throw new Error("nodes never discovered each other");
      await sleep(50);
    }
  }
}

/** Per node: pending requests (adapter) and NATS subscriptions (server's view). */
async function nodeState(slot) {
  const info = await op(slot.ctl, { op: "info" });
  const connz = await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=1024`)).json();
  const conn = connz.connections.find((c) => c.name === `e2e-node:${slot.node.port}`);
  return {
    pendingRequests: info.pendingRequests,
    subscriptions: conn?.subscriptions_list?.length ?? null,
    slowConsumers: info.slowConsumers,
    rssKiB: rssKiB(slot.node.proc.pid),
  };
}

// Clients record the numbered broadcasts they receive.
let nextClient = 0;
async function addClient(slot) {
  const c = await connect(slot.node.port, { auth: { rooms: [`room-${nextClient++ % 10}`] } });
  c.seen = new Set();
  c.slot = slot.i;
  c.connectedAt = Date.now();
  c.received.length = 0;
  c.offAny();
  c.onAny((event, seq) => {
    if (event === "seq") c.seen.add(seq);
  });
  slot.clients.push(c);
  return c;
}

for (const s of slots) await up(s);
await clusterFormed();
await sleep(1000);
const idle = await Promise.all(slots.map(nodeState));
for (let k = 0; k < clientCount; k++) await addClient(slots[k % slots.length]);
console.log(`soak: ${minutes} min, ${clientCount} clients, ${rate} broadcasts/s, restart every ${restartEvery / 1000} s`);
console.log(`idle: ${JSON.stringify(idle)}`);

const end = t0 + minutes * 60_000;
const sent = []; // { seq, at, expect: [client] }
const counters = { broadcasts: 0, broadcastErrors: 0, joins: 0, joinErrors: 0, requests: 0, requestErrors: 0 };
const latencies = { fetchSockets: [], rooms: [] };
const memory = []; // { t, rss: [KiB per slot] }
const errors = [];
const live = () => slots.filter((s) => !s.busy && !s.down);

async function broadcasts() {
  let seq = 0;
  while (Date.now() < end) {
    const tick = sleep(1000 / rate);
    const from = live()[seq % Math.max(1, live().length)];
    if (from) {
      const expect = slots.filter((s) => !s.busy && !s.down).flatMap((s) => s.clients.filter((c) => c.connected));
      const entry = { seq, at: Date.now(), expect };
      try {
        await op(from.ctl, { op: "emit", event: "seq", data: seq });
        sent.push(entry);
        counters.broadcasts++;
      } catch (e) {
        counters.broadcastErrors++;
        errors.push(`emit ${seq}: ${e.message}`);
      }
      seq++;
    }
    await tick;
  }
}

async function churn() {
  while (Date.now() < end) {
    await sleep(100);
    const from = pick(live());
    const target = pick(live().flatMap((s) => s.clients));
    if (!from || !target?.connected) continue;
    const room = `churn-${Math.floor(Math.random() * 20)}`;
    try {
      await op(from.ctl, { op: Math.random() < 0.5 ? "join" : "leave", to: target.id, rooms: [room] });
      counters.joins++;
    } catch (e) {
      counters.joinErrors++;
      errors.push(`join: ${e.message}`);
    }
  }
}

async function requests() {
  let k = 0;
  while (Date.now() < end) {
    await sleep(250);
    const from = pick(live());
    if (!from) continue;
    const kind = k++ % 2 ? "rooms" : "fetchSockets";
    const t = performance.now();
    try {
      await op(from.ctl, { op: kind });
      latencies[kind].push(performance.now() - t);
      counters.requests++;
    } catch (e) {
      counters.requestErrors++;
      errors.push(`${kind}: ${e.message}`);
    }
  }
}

async function restarts() {
  let n = 0;
  while (Date.now() + restartEvery < end) {
    await sleep(restartEvery);
    const slot = slots[1 + (n % 2)];
    const signal = n % 2 ? "SIGKILL" : "SIGINT";
    n++;
    slot.busy = true;
    const at = Date.now();
    const exited = new Promise((r) => slot.node.proc.once("exit", r));
    slot.node.kill(signal);
    // A clean shutdown waits for open connections; don't let it stall the soak.
    const timer = setTimeout(() => slot.node.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
    const count = slot.clients.length;
    for (const c of slot.clients) c.close();
    slot.clients = [];
    await up(slot);
    for (let k = 0; k < count; k++) await addClient(slot);
    await sleep(3000); // discovery by the other nodes
    slot.restarts.push({ at: at - t0, signal, downMs: Date.now() - at });
    slot.busy = false;
    console.log(`restart: node ${slot.i} (${signal}) back after ${Date.now() - at} ms`);
  }
}

async function sampler() {
  while (Date.now() < end) {
    memory.push({ t: Math.round((Date.now() - t0) / 1000), rssKiB: slots.map((s) => rssKiB(s.node.proc.pid)) });
    console.log(`t=${memory.at(-1).t}s rss KiB ${memory.at(-1).rssKiB.join(" / ")}  broadcasts ${counters.broadcasts}`);
    await sleep(sampleEvery);
  }
}

await Promise.all([broadcasts(), churn(), requests(), restarts(), sampler()]);

// Let the last deliveries land, then count the losses among clients whose node
// was not restarting (their delivery never depended on a restarted process).
await sleep(2000);
let expected = 0;
let lost = 0;
const lostSamples = [];
for (const { seq, at, expect } of sent) {
  for (const c of expect) {
    const restarting = slots[c.slot].restarts.some((r) => at >= t0 + r.at - 1000 && at <= t0 + r.at + r.downMs + 1000);
    if (restarting || !c.connected) continue;
    expected++;
    if (!c.seen.has(seq)) {
      lost++;
      if (lostSamples.length < 10) lostSamples.push({ seq, client: c.id, node: c.slot });
    }
  }
}

// Quiesce: drop every client, wait past the ack and heartbeat timeouts.
for (const s of slots) for (const c of s.clients) c.close();
await sleep(5000);
const final = await Promise.all(slots.map(nodeState));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2)) : null;
};
const report = {
  config: { minutes, clients: clientCount, rate, restartEverySec: restartEvery / 1000 },
  counters,
  deliveries: { expected, lost, lostSamples },
  requestLatencyMs: Object.fromEntries(
    Object.entries(latencies).map(([k, v]) => [k, { n: v.length, p50: pct(v, 50), p99: pct(v, 99), max: pct(v, 100) }]),
  ),
  restarts: slots.map((s) => s.restarts),
  memory,
  idle,
  final,
  errors: errors.slice(0, 50),
};
const checks = {
  "no broadcast lost by clients of healthy nodes": lost === 0,
  "pending requests back to idle": final.every((f, i) => f.pendingRequests === idle[i].pendingRequests),
  "subscriptions back to idle": final.every((f, i) => f.subscriptions !== null && f.subscriptions === idle[i].subscriptions),
};
report.checks = checks;

const out = join(dirname(fileURLToPath(import.meta.url)), "../artifacts/soak");
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "soak.json"), JSON.stringify(report, null, 2));

console.log("\n== soak report ==");
console.log(`broadcasts ${counters.broadcasts} (errors ${counters.broadcastErrors}), joins/leaves ${counters.joins} (errors ${counters.joinErrors}), requests ${counters.requests} (errors ${counters.requestErrors})`);
console.log(`deliveries to clients of healthy nodes: ${expected}, lost ${lost}`);
console.log(`request latency ms: ${JSON.stringify(report.requestLatencyMs)}`);
console.log(`restarts: ${JSON.stringify(report.restarts)}`);
console.log("memory (RSS MiB) node0 / node1 / node2:");
for (const m of memory) console.log(`  t=${String(m.t).padStart(4)}s  ${m.rssKiB.map((k) => (k / 1024).toFixed(1).padStart(6)).join(" /")}`);
console.log("node   idle pending/subs/rss MiB   final pending/subs/rss MiB   slow consumers");
for (const s of slots) {
  const [a, b] = [idle[s.i], final[s.i]];
  console.log(`  ${s.i}    ${a.pendingRequests} / ${a.subscriptions} / ${(a.rssKiB / 1024).toFixed(1)}            ${b.pendingRequests} / ${b.subscriptions} / ${(b.rssKiB / 1024).toFixed(1)}            ${b.slowConsumers}`);
}
for (const [name, ok] of Object.entries(checks)) console.log(`${ok ? "ok  " : "FAIL"} ${name}`);
if (errors.length) console.log(`first errors: ${errors.slice(0, 5).join(" | ")}`);

for (const s of slots) s.node.kill();
nats.stop();
process.exit(Object.values(checks).every(Boolean) ? 0 : 1);
