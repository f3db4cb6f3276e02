#!/usr/bin/env bash
# Installs everything opsflow and its lab need on a fresh Debian machine:
# Debian's prometheus, prometheus-alertmanager, chromium, postgresql, redis-server and nginx when missing,
# a virtual environment in .venv,
# and the project with its lab, salt and test extras. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
command -v chromium >/dev/null || missing+=(chromium)  # the UI tests read pages headless
# `opsflow lab up --prefect postgres` runs a PostgreSQL cluster of its own (never the default one)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)  # and --prefect ha, Redis
# `python -m bench.client` serves the host JSON from its own nginx as a loopback-speed baseline
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    # The packages' postinst would start the daemons on 0.0.0.0; the lab runs its own on
    # 127.0.0.1, so forbid service starts for the duration of the install.
    policy=/usr/sbin/policy-rc.d
    added_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=1
    fi
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -n "$added_policy" ] && as_root rm -f "$policy"
    if [ -d /run/systemd/system ]; then
        as_root systemctl disable --now prometheus prometheus-alertmanager postgresql redis-server \
            nginx 2>/dev/null || true
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip uv >/dev/null
# uv resolves and installs what pip would from the same pyproject, about ten times faster
# (here: 1.5 min with pip, 10 s with uv's cache, 1 min without)
# With it, the example of a user's own backend package, installed as a user's would be: its
# block type reaches every Prefect process through its entry point (tests/test_own_backend.py).
.venv/bin/uv pip install -q --python .venv/bin/python -e ".[lab,salt,test]" \
    -e "examples/inhouse_backend[server]"
echo "setup: ready ($(.venv/bin/python -c 'import prefect; print("prefect", prefect.__version__)'))"
