#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, lint, then every test against real servers
# (a Prefect API, OpenBao, Prometheus, Alertmanager and the lab platform, started by fixtures).
# With arguments, they go to pytest as they are (`bash scripts/test.sh -m unit`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ $# -gt 0 ]; then
    exec .venv/bin/pytest -q "$@"  # what was asked for, in one session
fi
# Everything, as two shards in parallel (tests/conftest.py, SHARDS): the topology and Salt
# tests in one session, the rest in another, each with its own servers on its own ports.
exec .venv/bin/pytest -q -n 2 --dist loadgroup
