#!/usr/bin/env bash
# Creates python/.venv if missing and installs requirements-dev.lock and the
# package into it (again whenever the lock changes). Run by run_tests.sh and by
# the repository's scripts/setup.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
python="${PYTHON:-python3}"

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "python: creating $venv"
  "$python" -m venv "$venv"
fi
stamp="$venv/.requirements-dev.lock"
if ! cmp -s requirements-dev.lock "$stamp"; then
  echo "python: installing requirements-dev.lock into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
  # setuptools is pinned in the lock: no isolated build fetching another one.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  cp requirements-dev.lock "$stamp"
fi

