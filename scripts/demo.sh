#!/usr/bin/env bash
# Build and start the demo: a chat served by three socket.io nodes clustered
# through NATS. Starts a local nats-server unless one answers at
# nats://127.0.0.1:4222 or --nats-url is given. Ctrl-C stops everything.
#   bash scripts/demo.sh [--nats-url URL] [--nats-cluster] [--port 3001] [--nodes 3]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh demo
cargo build --quiet -p chat-cluster
exec target/debug/chat-cluster "$@"
