#!/usr/bin/env bash
# The benchmarks: install, then run bench/ (its own lab and Prefect API) and write docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m bench "$@"
