// End-to-end: the demo (chat-cluster) driven in headless Chromium, Debian's
// package, through playwright-core. Two pages on two different nodes chat with
// each other and the cluster panel shows the three nodes. Screenshots are saved
// in artifacts/browser/.
//
// Needs `cargo build -p chat-cluster` and /usr/bin/chromium (CHROMIUM_BIN
// overrides); scripts/test.sh provides both.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startNats } from "./cluster.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const artifacts = join(root, "artifacts/browser");

function startDemo(natsUrl) {
  const bin = process.env.CHAT_CLUSTER_BIN ?? join(root, "target/debug/chat-cluster");
  if (!existsSync(bin)) throw new Error(`${bin} missing: run \`cargo build -p chat-cluster\``);
  const proc = spawn(bin, ["--nats-url", natsUrl, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${out}`)), 30_000);
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      const urls = [...out.matchAll(/node-(\d): (http:\/\/\S+)/g)].map((m) => m[2]);
      if (urls.length === 3) {
        clearTimeout(timer);
        resolve({ urls, stop: () => proc.kill("SIGTERM") });
      }
    });
    proc.on("exit", (code) => reject(new Error(`the demo exited with ${code}:\n${out}`)));
  });
}

describe("the chat demo in a real browser", () => {
  let nats;
  let demo;
  let browser;

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    nats = await startNats();
    demo = await startDemo(nats.url);
    const executablePath = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
    assert.ok(existsSync(executablePath), `${executablePath} missing: run \`bash scripts/setup.sh\``);
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  after(async () => {
    await browser?.close();
    demo?.stop();
    nats?.stop();
  });

  it("carries a message between pages on two nodes and shows the three nodes", async () => {
    const page1 = await browser.newPage();
    const page2 = await browser.newPage();
    await page1.goto(demo.urls[0]);
    await page2.goto(demo.urls[1]);
    await page1.locator("#node").filter({ hasText: "node-1" }).waitFor();
    await page2.locator("#node").filter({ hasText: "node-2" }).waitFor();

    for (const [page, name] of [[page1, "alice"], [page2, "bob"]]) {
      await page.fill("#name", name);
      await page.fill("#room", "lobby");
      await page.click("#join button");
      await page.locator("#send").waitFor({ state: "visible" });
    }
    await page1.locator("#messages li", { hasText: "bob joined from node-2" }).waitFor();

    // typing on node 2 shows up on node 1 (a volatile event)
    await page2.fill("#text", "h");
    await page2.type("#text", "ello");
    await page1.locator("#typing", { hasText: "bob (node-2) is typing" }).waitFor();

    await page1.fill("#text", "hello from node-1");
    await page1.click("#send button");
    const line = page2.locator("#messages li.chat", { hasText: "hello from node-1" });
    await line.waitFor();
    assert.match(await line.innerText(), /alice: hello from node-1\s*via node-1/);

    await page2.fill("#text", "and back from node-2");
    await page2.click("#send button");
    await page1.locator("#messages li.chat", { hasText: "and back from node-2" }).waitFor();

    // the cluster panel: three nodes, and the lobby on node-1 and node-2
    await page2.locator("#node-count", { hasText: "3" }).waitFor();
    const nodes = await page2.locator("#nodes tbody tr td:first-child").allInnerTexts();
    assert.deepEqual(nodes.map((n) => n.replace(/\s.*$/, "")).sort(), ["node-1", "node-2", "node-3"]);
    await page2.locator("#rooms tbody tr", { hasText: "lobby" }).filter({ hasText: "node-1: 1" }).filter({ hasText: "node-2: 1" }).waitFor();

    // the panel's counters, and the same in Prometheus text at /metrics: node-1
    // sent its chat message and node-2's came in (the room broadcasts cross nodes)
    await page1.locator("#m-sent").filter({ hasText: /^[1-9]/ }).waitFor();
    await page1.locator("#m-received").filter({ hasText: /^[1-9]/ }).waitFor();
    const text = await (await fetch(`${demo.urls[0]}/metrics`)).text();
    const metric = (name) => Number(text.match(new RegExp(`^${name}\\{ns="/"\\} (\\S+)$`, "m"))?.[1]);
    assert.ok(metric("socketioxide_nats_broadcasts_sent_total") >= 1, text);
    assert.ok(metric("socketioxide_nats_broadcasts_received_total") >= 1, text);
    assert.equal(metric("socketioxide_nats_servers"), 3, text);
    assert.match(text, /socketioxide_nats_requests_total\{ns="\/",kind="fetch_sockets",outcome="complete"\} [1-9]/);

    await page1.screenshot({ path: join(artifacts, "node-1.png"), fullPage: true });
    await page2.screenshot({ path: join(artifacts, "node-2.png"), fullPage: true });
  });
});
