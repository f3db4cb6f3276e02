"""Tasks over Prometheus: queries, the load of the fleet, waiting for hosts to recover."""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsflow.blocks.monitoring import Prometheus
from opsflow.opsapi.errors import RunbookAborted
from opsflow.opsapi.prometheus import PrometheusClient
from opsflow.tasks.hosts import READ


@task(name="Query Prometheus", **READ)
def query_instant(prometheus: Prometheus, promql: str) -> pd.DataFrame:
    """An instant query as a DataFrame (labels as columns, `value`, `timestamp`).

    Example:
        >>> query_instant(Prometheus.load("lab"), "up")                          # doctest: +SKIP
    """
    with prometheus.get_client() as client:
        return client.query(promql)


@task(name="Query Prometheus range", **READ)
def query_range(
    prometheus: Prometheus, promql: str, start: datetime, end: datetime, step: float = 15.0
) -> pd.DataFrame:
    """A range query in long form: one row per series and sample."""
    with prometheus.get_client() as client:
        return client.query_range(promql, start, end, step)


def instance_ip(instance: str) -> str:
    """`10.0.0.7:9100` -> `10.0.0.7`; `[::1]:9100` -> `::1`; a bare address stays as it is."""
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    host, sep, port = instance.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else instance


def load_by_instance(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per instance: `instance`, `ip`, `load` (the highest if several series)."""
    if frame.empty or "instance" not in frame.columns:
        return pd.DataFrame({"instance": [], "ip": [], "load": []})
    loads = frame[["instance", "value"]].rename(columns={"value": "load"})
    loads = loads.groupby("instance", as_index=False)["load"].max()
    loads["ip"] = loads["instance"].map(instance_ip)
    return loads


MAX_SAMPLE_AGE_SECONDS = 120.0


def sample_ages(client: PrometheusClient, promql: str) -> dict[str, float]:
    """Seconds since each instance's newest sample of `promql` was taken.

    Prometheus answers an instant query with any sample from the last 5 minutes, so a stuck
    exporter still "has" a value; `timestamp()` tells its age. For a plain selector such as
    `node_load1` that is the sample's own time; for a computed expression Prometheus gives the
    evaluation time (age 0), so only selectors are checked.
    """
    frame = client.query(f"timestamp({promql})")
    if frame.empty or "instance" not in frame.columns:
        return {}
    frame["age"] = frame["timestamp"].map(lambda t: t.timestamp()) - frame["value"]
    return frame.groupby("instance")["age"].min().to_dict()


def current_loads(
    client: PrometheusClient, frame: pd.DataFrame, promql: str, max_age_seconds: float | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`frame` (the answer to `promql`) as (usable loads, unusable rows with a `why`): NaN and
    samples older than `max_age_seconds` are never used."""
    loads = load_by_instance(frame)
    loads["why"] = None
    loads.loc[loads["load"].isna(), "why"] = "NaN"
    if max_age_seconds is not None and not loads.empty:
        ages = loads["instance"].map(sample_ages(client, promql))
        stale = ages > max_age_seconds
        loads.loc[stale, "why"] = "stale, " + ages[stale].round().astype(int).astype(str) + "s old"
    unusable = loads["why"].notna()
    return loads[~unusable].drop(columns="why"), loads[unusable]


@task(name="Query load", **READ)
def query_load(
    prometheus: Prometheus,
    promql: str = "node_load1",
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
) -> pd.DataFrame:
    """Current load per instance; stops the runbook when there is no usable data.

    NaN values and samples older than `max_age_seconds` are dropped (and named in a warning):
    their hosts then count as hosts without data, which no runbook acts on.

    Raises:
        RunbookAborted: the query returned no series, or only NaN or stale ones, or series
            without an `instance` label; nothing should be acted on then.
    """
    with prometheus.get_client() as client:
        frame = client.query(promql)
        if frame.empty:
            raise RunbookAborted(
                f"Prometheus returned no series for {promql!r}: no load data, so no action; "
                "check the query and that the exporters are scraped"
            )
        if "instance" not in frame.columns:
            raise RunbookAborted(f"series of {promql!r} have no 'instance' label to match hosts by")
        usable, unusable = current_loads(client, frame, promql, max_age_seconds)
    logger = get_run_logger()
    if not unusable.empty:
        logger.warning(
            "%d instances have no usable sample of %r (not acted on): %s",
            len(unusable),
            promql,
            ", ".join(
                f"{i} ({w})" for i, w in zip(unusable["instance"], unusable["why"], strict=True)
            ),
        )
    if usable.empty:
        reasons = ", ".join(sorted(set(unusable["why"])))[:200]
        raise RunbookAborted(
            f"every series of {promql!r} is NaN or stale ({reasons}): no usable load data, "
            "so no action"
        )
    logger.info("load: %d instances, max %.2f", len(usable), usable["load"].max())
    return usable


@task(name="Wait for recovery", cache_policy=NO_CACHE)
def wait_for_recovery(
    prometheus: Prometheus,
    promql: str,
    ips: list[str],
    threshold: float,
    window_seconds: float,
    poll_seconds: float = 2.0,
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
) -> dict[str, float | None]:
    """Poll `promql` until every IP's load is under `threshold` or the window ends.

    Returns:
        The last load seen per IP (None when Prometheus had no current value for it: missing,
        NaN or stale — a host is never called recovered on old data).
    """
    deadline = time.monotonic() + window_seconds
    last: dict[str, float | None] = dict.fromkeys(ips)
    with prometheus.get_client() as client:
        while True:
            loads, _ = current_loads(client, client.query(promql), promql, max_age_seconds)
            seen = dict(zip(loads["ip"], loads["load"], strict=True))
            last = {ip: (float(seen[ip]) if ip in seen else None) for ip in ips}
            waiting = [ip for ip, load in last.items() if load is None or load >= threshold]
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(poll_seconds)
    if waiting:
        get_run_logger().warning(
            "%d of %d hosts still at or over %.2f after %.0fs: %s",
            len(waiting),
            len(ips),
            threshold,
            window_seconds,
            ", ".join(waiting[:10]),
        )
    return last
