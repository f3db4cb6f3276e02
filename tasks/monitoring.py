"""Tasks over Prometheus: queries, a metric per instance (load, disk usage, ...), waiting for
hosts to fall back under a threshold."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal, NamedTuple, overload

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsflow.blocks.monitoring import Prometheus
from opsflow.opsapi.errors import BadResponse
from opsflow.opsapi.gc_pause import paused_gc
from opsflow.opsapi.prometheus import PrometheusClient, Sample
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


class Reading(NamedTuple):
    """A metric's value for one instance: what runbooks plan and verify with (no pandas to
    import for it; `pandas.DataFrame(readings)` makes a table with these columns)."""

    instance: str
    ip: str
    value: float


class Readings(Sequence[Reading]):
    """What a read task answers: `Reading`s in instance order, read-only; iterate it, index
    it, take its `len`, or `list(...)` it (`pandas.DataFrame(readings)` makes a table).

    A sequence, not a list: Prefect links a task's list answer to its run element by element
    to draw dependencies (about 6 µs an element, 0.6 s of a 100,000-host read, on the GIL the
    inventory's pages are decoded under); this it links once.

    Example:
        >>> r = Readings([Reading("10.0.0.7:9100", "10.0.0.7", 5.25)])
        >>> len(r), r[0].value, r == [Reading("10.0.0.7:9100", "10.0.0.7", 5.25)]
        (1, 5.25, True)
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Reading] = ()) -> None:
        self._items = list(items)

    @overload
    def __getitem__(self, index: int) -> Reading: ...
    @overload
    def __getitem__(self, index: slice) -> list[Reading]: ...
    def __getitem__(self, index: int | slice) -> Reading | list[Reading]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Readings):
            return self._items == other._items
        if isinstance(other, list):
            return self._items == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list, so not hashable either

    def __repr__(self) -> str:
        return f"Readings({self._items!r})"


def value_by_instance(samples: list[Sample]) -> list[Reading]:
    """One reading per instance, in instance order: the highest value if several series (NaN
    only when all are); series without an `instance` label are left out.

    Example:
        >>> value_by_instance([Sample({"instance": "10.0.0.7:9100"}, 5.25, 0.0)])
        [Reading(instance='10.0.0.7:9100', ip='10.0.0.7', value=5.25)]
    """
    best: dict[str, float] = {}
    for sample in samples:
        instance = sample.labels.get("instance")
        if instance is None:
            continue
        seen = best.get(instance)
        if seen is None or math.isnan(seen) or sample.value > seen:
            best[instance] = sample.value
    with paused_gc():  # a fleet's readings: objects that stay, no cycles
        return [Reading(i, instance_ip(i), best[i]) for i in sorted(best)]


MAX_SAMPLE_AGE_SECONDS = 120.0


SAMPLE_TIME = "opsflow_sample_time"  # marks the sample-time series in a combined answer


def query_with_ages(
    client: PrometheusClient,
    promql: str,
    freshness_query: str | None,
    max_age_seconds: float | None,
) -> tuple[list[Sample], dict[str, float]]:
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

    Prometheus itself keeps each instance's highest value (`max by (instance)`, NaN only when
    every series of the instance is NaN, as `value_by_instance` does): the answer carries the
    one label a reading keeps, not every label of every series (at 100,000 hosts half
    the JSON to send and parse).
    """
    # each query closes its parenthesis on a line of its own: a query may end in a # comment
    highest = f"max by (instance) ({promql}\n)"
    if max_age_seconds is None:
        return client.samples(highest), {}
    fresh = freshness_query or promql
    answer = client.samples(
        f"({highest}) or label_replace(max by (instance) (timestamp({fresh}\n)) "
        f'< time() - {max_age_seconds:g}, "{SAMPLE_TIME}", "1", "", "")'
    )
    values = [s for s in answer if s.labels.get(SAMPLE_TIME) != "1"]
    ages = {
        s.labels["instance"]: s.timestamp - s.value
        for s in answer
        if s.labels.get(SAMPLE_TIME) == "1" and "instance" in s.labels
    }
    return values, ages


def current_values(
    samples: list[Sample], ages: dict[str, float], max_age_seconds: float | None
) -> tuple[list[Reading], list[tuple[Reading, str]]]:
    """`samples` (a query's answer) as (usable readings, unusable ones with why): NaN, and
    instances whose newest sample is older than `max_age_seconds` (`ages`), are never used."""
    usable, unusable = [], []
    for reading in value_by_instance(samples):
        age = ages.get(reading.instance)
        if max_age_seconds is not None and age is not None and age > max_age_seconds:
            unusable.append((reading, f"stale, {round(age)}s old"))
        elif math.isnan(reading.value):
            unusable.append((reading, "NaN"))
        else:
            usable.append(reading)
    return usable, unusable


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
    seen = {r.ip: r.value for r in values}
    return {ip: seen.get(ip) for ip in ips}


@task(name="Query metric", **READ)
def query_metric(
    prometheus: Prometheus,
    promql: str = "node_load1",
    max_age_seconds: float | None = MAX_SAMPLE_AGE_SECONDS,
    freshness_query: str | None = None,
) -> Readings:
    """The current value of `promql` per instance, only usable ones, in instance order.

    NaN values, and instances whose newest `freshness_query` sample (default: `promql`
    itself, right for a plain selector) is older than `max_age_seconds`, are dropped and named
    in a warning: their hosts then count as hosts without data, which no runbook acts on.

    Example:
        >>> query_metric(Prometheus.load("lab"), "node_load1")              # doctest: +SKIP
        [Reading(instance='10.0.0.7:9100', ip='10.0.0.7', value=5.25), ...]

    Raises:
        BadResponse: the query returned no series, or only NaN or stale ones, or series
            without an `instance` label; nothing should be acted on then.
    """
    with prometheus.get_client() as client:
        samples, ages = query_with_ages(client, promql, freshness_query, max_age_seconds)
        if not samples:
            raise BadResponse(
                f"Prometheus returned no series for {promql!r}: check the query and that the "
                "exporters are scraped"
            )
        if not any("instance" in s.labels for s in samples):
            raise BadResponse(f"series of {promql!r} have no 'instance' label to match hosts by")
        usable, unusable = current_values(samples, ages, max_age_seconds)
    logger = get_run_logger()
    if unusable:
        logger.warning(
            "%d instances have no usable sample of %r (not acted on): %s",
            len(unusable),
            promql,
            ", ".join(f"{r.instance} ({why})" for r, why in unusable),
        )
    if not usable:
        reasons = ", ".join(sorted({why for _, why in unusable}))[:200]
        raise BadResponse(f"every series of {promql!r} is NaN or stale ({reasons})")
    logger.info("%s: %d instances, max %.2f", promql, len(usable), max(r.value for r in usable))
    return Readings(usable)


@task(name="Query values", **READ)
def query_values(prometheus: Prometheus, promql: str) -> Readings:
    """`promql`'s value per instance as it is (NaN included; no age check; an empty answer is
    empty `Readings`): figures that describe hosts rather than judge them, CPU counts say."""
    with prometheus.get_client() as client:
        return Readings(value_by_instance(client.samples(promql)))


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
