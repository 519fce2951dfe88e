// Clean shutdown: a node stopped with SIGTERM (what systemd, Kubernetes or a
// rolling deploy send) closes its socket.io server, so the others forget it at
// once instead of waiting for its heartbeat timeout (2 s for the e2e nodes).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { connect, op, startCluster } from "./cluster.mjs";

describe("clean shutdown", () => {
  let cluster;
  before(async () => {
    cluster = await startCluster({ count: 3 });
  });
  after(() => cluster?.stop());

  it("forgets a node stopped with SIGTERM at once, and the node exits cleanly", async () => {
    const ctl = await connect(cluster.nodes[0].port);
    const exited = new Promise((resolve) => cluster.nodes[2].proc.once("exit", (code, signal) => resolve({ code, signal })));
    const t0 = Date.now();
    cluster.nodes[2].kill("SIGTERM");
    let info = await op(ctl, { op: "info" });
    while (info.serverCount !== 2) {
      assert.ok(Date.now() - t0 < 1500, `still counted after ${Date.now() - t0} ms: ${JSON.stringify(info)}`);
      await new Promise((r) => setTimeout(r, 10));
      info = await op(ctl, { op: "info" });
    }
    const took = Date.now() - t0;
    // The goodbye is confirmed by a probe 25 ms later; the heartbeat timeout is 2 s.
    assert.ok(took < 500, `forgotten after ${took} ms`);
    assert.deepEqual(await exited, { code: 0, signal: null });
    ctl.disconnect();
  });
});
