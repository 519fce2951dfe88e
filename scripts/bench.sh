#!/usr/bin/env bash
# The adapter benchmark (not part of scripts/test.sh): local adapter, socketioxide-redis
# 0.4 over redis-server, socketioxide-nats over nats-server, and raw NATS, with real
# websocket clients, alternated round by round. Usage:
#   bash scripts/bench.sh [--rounds 3] [--clients 30] [--burst 2000] [--size 64]
#                         [--only throughput,latency,...] [--configs local,redis,nats,raw]
#                         [--quick] [--json artifacts/bench/bench.json]
# Prints one table per load (median [min–max] over rounds, ratios nats/redis,
# nats/local, nats/raw); see benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh demo >/dev/null
if ! command -v redis-server >/dev/null; then
  echo "bench: installing Debian's redis-server"
  sudo_cmd=()
  if [[ "$(id -u)" != "0" ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq redis-server >/dev/null
fi
cargo build --locked --release -p adapter-bench
./target/release/adapter-bench "$@"
