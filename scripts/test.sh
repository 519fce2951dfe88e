#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: it installs what is
# missing (a pinned nats-server, the JavaScript clients, Chromium for the browser
# test), then runs
#   1. the Rust suites (every feature on): unit, integration over real nats-server
#      processes, doc tests;
#   2. the acceptance suite: the official socket.io-client against separate server
#      processes, both parsers, both transports, clean shutdown, and the demo in
#      headless Chromium (e2e/*.test.mjs; screenshots in artifacts/browser/);
#   3. the emitters of other languages, each against three server processes with
#      real socket.io clients and the shared protocol vectors: Node.js (node/) and
#      Python (python/).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo test --workspace --all-features --locked
# The same features as the test run, so nothing is compiled twice.
cargo build --workspace --all-features --bins --locked
node --test --test-reporter=spec e2e/*.test.mjs
(cd node && npm test)
bash python/run_tests.sh
