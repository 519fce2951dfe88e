#!/usr/bin/env bash
# Soak test (not part of scripts/test.sh): a 3-node cluster of release-built
# e2e-node processes under sustained broadcasts, room churn, requests and node
# restarts. Usage: bash scripts/soak.sh [--minutes 10] [--clients 60] [--rate 50]
#                                      [--restart-every 60] [--sample-every 10]
# Prints memory over time, losses, and pending requests / subscriptions against
# their idle values; exits 1 if a check fails. JSON in artifacts/soak/soak.json.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh e2e
cargo build --locked --release -p e2e-node
E2E_NODE_BIN="$PWD/target/release/e2e-node" node e2e/soak.mjs "$@"
