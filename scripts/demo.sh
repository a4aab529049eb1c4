#!/usr/bin/env bash
# The main job: watch a pipeline scale itself onto three devices, on an embedded Kafka broker.
# Options: --short (a quick run), --forever (until Ctrl-C), --plain (no live screen).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m examples.demo "$@"
