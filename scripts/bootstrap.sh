#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: a virtualenv with the project and its
# test tools, and the Kafka jars in the user cache. Safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.fogverse-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev,demo]"
  touch "$stamp"
fi
if [ -z "${FOGVERSE_BOOTSTRAP:-}" ]; then
  .venv/bin/fogverse fetch-jars
fi
