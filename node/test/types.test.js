// The hand-written declarations (index.d.ts, protocol.d.ts) compile against a
// usage example, resolved through the package's own exports map.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

test("the TypeScript declarations describe the package", async () => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const project = fileURLToPath(new URL("./types/tsconfig.json", import.meta.url));
  const { code, output } = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, "-p", project], (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, output: stdout + stderr });
    });
  });
  assert.equal(code, 0, output);
});
