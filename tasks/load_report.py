"""The fleet's load as one table: per host, per CPU, flagged against thresholds."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from opsflow.opsapi.models import Host
from opsflow.tasks.monitoring import Reading

if TYPE_CHECKING:  # pandas is imported where the table is built, not on every process start
    import pandas as pd

STATUS_ORDER = {"critical": 0, "warning": 1, "no data": 2, "ok": 3}
ARTIFACT_ROWS = 200  # the UI table shows the worst hosts; the CSV has every one


def import_pandas_meanwhile() -> None:
    """Import pandas in a thread of its own while the run waits for its reads: 0.3-0.5 s that
    would otherwise come after the last answer, before the table."""
    threading.Thread(target=importlib.import_module, args=("pandas",), daemon=True).start()


def load_table(
    loads: Sequence[Reading],
    cpus: Sequence[Reading],
    hosts: list[Host],
    warning: float,
    critical: float,
) -> pd.DataFrame:
    """One row per host: hostname, ip, load, cpus, load_per_cpu, status; worst first.

    `loads` and `cpus` have one reading per instance; the per-CPU figure is used for the flags
    where the CPU count is known (none given: nowhere), the raw load otherwise.
    """
    import numpy as np
    import pandas as pd

    inventory = pd.DataFrame(
        {
            "hostname": [h.hostname for h in hosts],
            "ip": [h.ip for h in hosts],
            "tags": [",".join(h.tags) for h in hosts],
        }
    )
    table = inventory.merge(_by_ip(loads, "load"), on="ip", how="left")
    table = table.merge(_by_ip(cpus, "cpus"), on="ip", how="left")
    table["load_per_cpu"] = (table["load"] / table["cpus"]).round(3)
    measure = table["load_per_cpu"].fillna(table["load"])
    table["status"] = np.select(
        [table["load"].isna(), measure >= critical, measure >= warning],
        ["no data", "critical", "warning"],
        default="ok",
    )
    table["rank"] = table["status"].map(STATUS_ORDER)
    table = table.sort_values(["rank", "load"], ascending=[True, False], kind="stable")
    return table.drop(columns="rank").reset_index(drop=True)


def _by_ip(readings: Sequence[Reading], column: str) -> pd.DataFrame:
    """Columns `ip` and `column` (float), one row per reading."""
    import pandas as pd

    return pd.DataFrame(
        {
            "ip": pd.Series([r.ip for r in readings], dtype=object),
            column: pd.Series([r.value for r in readings], dtype=float),
        }
    )


@task(name="Publish load report", cache_policy=NO_CACHE)
def publish_load_report(table: pd.DataFrame, csv_path: str | None) -> dict[str, int]:
    """Table artifact (worst hosts), markdown counts, optional CSV of every host."""
    counts = {status: int((table["status"] == status).sum()) for status in STATUS_ORDER}
    shown = table.head(ARTIFACT_ROWS).replace({float("nan"): None})
    create_table_artifact(
        shown.to_dict("records"),
        key="load-report",
        description=f"{len(table)} hosts, worst {len(shown)} shown",
    )
    lines = [f"## Load report: {len(table)} hosts", ""]
    lines += [f"- **{status}**: {count}" for status, count in counts.items()]
    if csv_path:
        path = Path(csv_path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        lines.append(f"\nEvery host in `{path}`.")
    create_markdown_artifact("\n".join(lines), key="load-report-summary")
    get_run_logger().info("load report: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts
