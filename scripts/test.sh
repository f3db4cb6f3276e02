#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, lint, then every test against real servers
# (a Prefect API, OpenBao, Prometheus, Alertmanager and the lab platform, started by fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest -q "$@"
