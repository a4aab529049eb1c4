#!/usr/bin/env bash
# The main job: a source -> stage -> sink pipeline on an embedded Kafka broker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m examples.demo "$@"
