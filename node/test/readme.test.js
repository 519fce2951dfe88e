// The README's example runs as it is against a real node: a snippet users copy
// must not rot.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import { connect, startNats, startNode } from "./cluster.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const snippet = readme.match(/```js\n([\s\S]*?)```/)[1];
const pkgDir = fileURLToPath(new URL("..", import.meta.url));

let nats;
let node;
before(async () => {
  nats = await startNats();
  node = await startNode(nats.url, "default");
});
after(() => {
  node?.kill();
  nats?.stop();
});

test("the README example runs", async () => {
  const client = await connect(node.port, { auth: { rooms: ["room1"] } });
  try {
    // Run from the package directory: the snippet imports the package by its name.
    const { code, stdout, stderr } = await new Promise((resolve) => {
      execFile(
        process.execPath,
        ["--input-type=module", "--eval", snippet],
        { cwd: pkgDir, env: { ...process.env, NATS_URL: nats.url }, timeout: 20_000 },
        (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr }),
      );
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^servers: 1$/m);
    assert.match(stdout, new RegExp(`sockets: \\[\\s*\\{[^}]*id: '${client.id}'`));
    assert.match(stdout, new RegExp(`${client.id} \\{ from: '${client.id}', event: 'ready\\?' \\}`));
    // The volatile event travels apart from the others (socketioxide): in any order.
    const events = client.received.map(([e]) => e);
    assert.deepEqual(events.sort(), ["news", "news", "position", "ready?"]);
    const [, [text, bin]] = client.received.filter(([e]) => e === "news")[1];
    assert.equal(text, "for two rooms");
    assert.deepEqual([...new Uint8Array(bin)], [1, 2, 3]);
  } finally {
    client.disconnect();
  }
});
