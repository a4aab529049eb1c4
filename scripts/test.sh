#!/usr/bin/env bash
# The test run: lint, type-check, then every test against one real broker.
# With no arguments it first runs the real-broker smoke tests once more with the
# broker in a container (testcontainers), so the suite proves itself on both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# A Docker engine and the base image for the container tests: without one they
# skip and say why, or fail under CI (tests/docker_engine.py).
eval "$(scripts/docker-env.sh)"
# Debian's headless Chromium for the dashboard's browser test: without it that test
# skips and says why (tests/browser.py).
eval "$(scripts/browser-env.sh)"
.venv/bin/ruff check .
.venv/bin/mypy
if [ "$#" -eq 0 ]; then
  FOGVERSE_TEST_KAFKA=container .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/broker/test_broker_roundtrip.py tests/test_kafka_container.py
fi
exec .venv/bin/python -m pytest -q "$@"
