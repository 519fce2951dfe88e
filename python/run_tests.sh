#!/usr/bin/env bash
# Runs the Python emitter's tests: the shared protocol vectors, unit tests, and the
# end-to-end suite against three e2e-node processes on a real nats-server.
#
# Needs python3 (>= 3.10), plus, from the repository: nats-server
# (`bash scripts/setup.sh` puts it in .venv/bin; or set NATS_SERVER_BIN) and the
# e2e node (`cargo build -p e2e-node`; or set E2E_NODE_BIN). Creates python/.venv
# if missing and installs requirements-dev.lock into it (again when the lock changes).
#
# Usage: bash python/run_tests.sh [pytest args...]     e.g. -k vectors, -x, -v
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$here"

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "run_tests: $python not found: install Python 3.10 or later (or set PYTHON)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "run_tests: $("$python" --version 2>&1) is too old: Python 3.10 or later is needed (set PYTHON)" >&2
  exit 1
fi

# The binaries the end-to-end suite starts: checked first, with what to run if missing.
nats_bin="${NATS_SERVER_BIN:-}"
if [[ -z "$nats_bin" ]]; then
  if [[ -x "$root/.venv/bin/nats-server" ]]; then
    nats_bin="$root/.venv/bin/nats-server"
  else
    nats_bin="$(command -v nats-server || true)"
  fi
fi
if [[ -z "$nats_bin" || ! -x "$nats_bin" ]]; then
  echo "run_tests: nats-server not found: run \`bash scripts/setup.sh\` from the repository root (or set NATS_SERVER_BIN)" >&2
  exit 1
fi
node_bin="${E2E_NODE_BIN:-$root/target/debug/e2e-node}"
if [[ ! -x "$node_bin" ]]; then
  echo "run_tests: $node_bin missing: run \`cargo build -p e2e-node\` from the repository root (or set E2E_NODE_BIN)" >&2
  exit 1
fi
if [[ -z "${E2E_NODE_BIN:-}" && "$root/e2e/server/src/main.rs" -nt "$node_bin" ]]; then
  echo "run_tests: warning: $node_bin is older than e2e/server/src/main.rs; run \`cargo build -p e2e-node\` if tests fail" >&2
fi
export NATS_SERVER_BIN="$nats_bin" E2E_NODE_BIN="$node_bin"

# The test environment, from the lockfile only (scripts/setup.sh makes it too).
PYTHON="$python" bash "$here/setup_venv.sh"
venv="$here/.venv"

exec "$venv/bin/python" -m pytest "$@"
