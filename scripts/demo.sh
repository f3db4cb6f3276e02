#!/usr/bin/env bash
# The main job on a fresh machine: install, bring the lab up, overload three lab hosts,
# run the restart-overloaded-hosts runbook and print its report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false
opsflow=.venv/bin/opsflow

$opsflow lab up --hosts 10
$opsflow lab reset --hosts 10
$opsflow lab overload lab-web-03 lab-db-06 lab-web-09 --load 8
echo "waiting for Prometheus to scrape the overload..."
sleep 4
$opsflow lab hosts
# `lab up` saved its blocks under the name "lab"; a real platform's blocks get their own names.
$opsflow run restart-overloaded-hosts --platform-block lab --prometheus-block lab \
    --threshold 4 --recovery-threshold 2 --batch-size 2
$opsflow lab hosts
echo "The lab keeps running: 'opsflow lab status', 'opsflow lab down' (from .venv/bin)."
