"""Tasks over Prometheus: queries, a metric per instance (load, disk usage, ...), waiting for
hosts to fall back under a threshold."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsflow.blocks.monitoring import Prometheus
from opsflow.opsapi.errors import BadResponse
from opsflow.opsapi.prometheus import PrometheusClient
from opsflow.tasks.hosts import READ

# pandas is imported where a frame is built, not on every process start (0.5 s of it)
if TYPE_CHECKING:
    import pandas as pd


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


def value_by_instance(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per instance: `instance`, `ip`, `value` (the highest if several series)."""
    if frame.empty or "instance" not in frame.columns:
        import pandas as pd

        return pd.DataFrame({"instance": [], "ip": [], "value": []})
    values = frame.groupby("instance", as_index=False)["value"].max()
    values["ip"] = values["instance"].map(instance_ip)
    return values[["instance", "ip", "value"]]


MAX_SAMPLE_AGE_SECONDS = 120.0


SAMPLE_TIME = "opsflow_sample_time"  # marks the sample-time series in a combined answer


def query_with_ages(
    client: PrometheusClient,
    promql: str,
    freshness_query: str | None,
    max_age_seconds: float | None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """`promql`'s answer and, when ages matter, the seconds since each instance's newest
    `freshness_query` sample (default: `promql`'s own) was taken, for the instances whose newest
    sample is older than `max_age_seconds` (an instance not in the dict is fresh): in one query,
    those sample times riding along as `timestamp()` series marked with a label of their own.
    Only the old ones ride along, so a fleet that is fresh costs no extra series (at 100,000
    hosts the answer would otherwise double).

    Prometheus answers an instant query with any sample from the last 5 minutes, so a stuck
    exporter still "has" a value; `timestamp()` tells its age. For a plain selector such as
    `node_load1` that is the sample's own time; for a computed expression Prometheus gives the
    evaluation time (age 0), which is why a computed query names a plain selector of the same
    exporter as its freshness query.
    """
    if max_age_seconds is None:
        return client.query(promql), {}
    fresh = freshness_query or promql
    frame = client.query(
        f"({promql}) or label_replace(max by (instance) (timestamp({fresh})) "
        f'< time() - {max_age_seconds:g}, "{SAMPLE_TIME}", "1", "", "")'
    )
    if SAMPLE_TIME not in frame.columns:
        return frame, {}
    is_time = frame[SAMPLE_TIME] == "1"
    values = frame[~is_time].drop(columns=SAMPLE_TIME)
    # Labels only the sample-time series have are not labels of the answer.
    labels = [c for c in values.columns if c not in ("value", "timestamp")]
    values = values.drop(columns=[c for c in labels if values[c].isna().all()])
    times = frame[is_time]
    if times.empty or "instance" not in times.columns:
        return values, {}
    ages = times["timestamp"].map(lambda t: t.timestamp()) - times["value"]
    return values, dict(zip(times["instance"], ages, strict=True))


def current_values(
    frame: pd.DataFrame, ages: dict[str, float], max_age_seconds: float | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`frame` (a query's answer) as (usable values, unusable rows with a `why`): NaN, and
    instances whose newest sample is older than `max_age_seconds` (`ages`), are never used."""
    values = value_by_instance(frame)
    values["why"] = None
    values.loc[values["value"].isna(), "why"] = "NaN"
    if max_age_seconds is not None and not values.empty:
        age = values["instance"].map(ages)
        stale = age > max_age_seconds
        values.loc[stale, "why"] = "stale, " + age[stale].round().astype(int).astype(str) + "s old"
    unusable = values["why"].notna()
    return values[~unusable].drop(columns="why"), values[unusable]


SELECTOR = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*", re.DOTALL)


def only_instances(promql: str, ips: list[str]) -> str:
    r"""A plain selector narrowed to the instances of `ips` (`10.0.0.7`, `10.0.0.7:9100`,
    `[::1]:9100`), so Prometheus answers for a batch, not the fleet (at 10,000 hosts 0.7 s of
    query and parsing per read); any other expression is returned unchanged.

    Example:
        >>> print(only_instances('node_load1{job="node"}', ["10.0.0.7"]))
        node_load1{job="node", instance=~`\[?(10\.0\.0\.7)\]?(:[0-9]+)?`}
        >>> only_instances("avg by (instance) (node_load5)", ["10.0.0.7"])
        'avg by (instance) (node_load5)'
    """
    match = SELECTOR.fullmatch(promql)
    if match is None or not ips:
        return promql
    name, matchers = match.group(1), (match.group(2) or "").strip().rstrip(",")
    wanted = f"instance=~`\\[?({'|'.join(re.escape(ip) for ip in ips)})\\]?(:[0-9]+)?`"
    return f"{name}{{{matchers}, {wanted}}}" if matchers else f"{name}{{{wanted}}}"


def values_of_ips(
    client: PrometheusClient,
    promql: str,
    ips: list[str],
    max_age_seconds: float | None,
    freshness_query: str | None,
) -> dict[str, float | None]:
    """`promql`'s usable value for each IP now (None: missing, NaN or stale); a plain selector
    is asked for these instances only (`only_instances`)."""
    narrowed = only_instances(promql, ips)
    fresh = only_instances(freshness_query or promql, ips)
    values, _ = current_values(
        *query_with_ages(client, narrowed, fresh, max_age_seconds), max_age_seconds
    )
    seen = dict(zip(values["ip"], values["value"], strict=True))
    return {ip: (float(seen[ip]) if ip in seen else None) for ip in ips}


@task(name="Query metric", **READ)
def query_metric(
    prometheus: Prometheus,
    promql: str = "node_load1",
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
    freshness_query: str | None = None,
) -> pd.DataFrame:
    """The current value of `promql` per instance (`instance`, `ip`, `value`), only usable ones.

    NaN values, and instances whose newest `freshness_query` sample (default: `promql`
    itself, right for a plain selector) is older than `max_age_seconds`, are dropped and named
    in a warning: their hosts then count as hosts without data, which no runbook acts on.

    Raises:
        BadResponse: the query returned no series, or only NaN or stale ones, or series
            without an `instance` label; nothing should be acted on then.
    """
    with prometheus.get_client() as client:
        frame, ages = query_with_ages(client, promql, freshness_query, max_age_seconds)
        if frame.empty:
            raise BadResponse(
                f"Prometheus returned no series for {promql!r}: check the query and that the "
                "exporters are scraped"
            )
        if "instance" not in frame.columns:
            raise BadResponse(f"series of {promql!r} have no 'instance' label to match hosts by")
        usable, unusable = current_values(frame, ages, max_age_seconds)
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
        raise BadResponse(f"every series of {promql!r} is NaN or stale ({reasons})")
    logger.info("%s: %d instances, max %.2f", promql, len(usable), usable["value"].max())
    return usable


@task(name="Check values now", **READ)
def current_values_of(
    prometheus: Prometheus,
    promql: str,
    ips: list[str],
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
    freshness_query: str | None = None,
) -> dict[str, float | None]:
    """The value of `promql` for each IP now (None: missing, NaN or stale)."""
    with prometheus.get_client() as client:
        return values_of_ips(client, promql, ips, max_age_seconds, freshness_query)


@task(name="Wait for recovery", cache_policy=NO_CACHE)
def wait_for_recovery(
    prometheus: Prometheus,
    promql: str,
    ips: list[str],
    threshold: float,
    window_seconds: float,
    poll_seconds: float = 2.0,
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
    freshness_query: str | None = None,
    side: Literal["above", "below"] = "above",
) -> dict[str, float | None]:
    """Poll `promql` until every IP's value is under `threshold` (over it when the bad `side`
    is "below") or the window ends.

    Returns:
        The last value seen per IP (None when Prometheus had no current value for it: missing,
        NaN or stale — a host is never called recovered on old data).
    """
    deadline = time.monotonic() + window_seconds
    with prometheus.get_client() as client:
        while True:
            last = values_of_ips(client, promql, ips, max_age_seconds, freshness_query)
            waiting = [
                ip
                for ip, value in last.items()
                if value is None or (value >= threshold if side == "above" else value <= threshold)
            ]
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(poll_seconds)
    if waiting:
        get_run_logger().warning(
            "%d of %d hosts still at or %s %.2f after %.0fs: %s",
            len(waiting),
            len(ips),
            "over" if side == "above" else "under",
            threshold,
            window_seconds,
            ", ".join(waiting[:10]),
        )
    return last
