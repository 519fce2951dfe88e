#!/usr/bin/env bash
# The one command that runs every test on a fresh machine: it installs what is
# missing (a pinned nats-server, the JavaScript test clients), then runs the
# Rust suites (unit, integration over real nats-server processes, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo test --workspace --locked
