"""One load-report run in a fresh process; prints its wall time and peak memory as JSON."""

from __future__ import annotations

import json
import resource
import sys
import time

from opsflow.flows.runbooks.load_report import LoadReportParams, load_report


def main(hosts: int) -> None:
    started = time.perf_counter()
    report = load_report(
        LoadReportParams(
            csv_path=f"/tmp/opsflow-bench-load-{hosts}.csv", platform="lab", prometheus="lab"
        )
    )
    seconds = time.perf_counter() - started
    if report.hosts != hosts:
        raise SystemExit(f"report covered {report.hosts} hosts, expected {hosts}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"hosts": hosts, "seconds": seconds, "peak_mb": peak_mb}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
