"""Prometheus HTTP API client: instant queries as samples or a pandas DataFrame, range
queries as a DataFrame.

Example:
    >>> prom = PrometheusClient("http://127.0.0.1:9090")
    >>> prom.samples("node_load1")                   # doctest: +SKIP
    [Sample(labels={'__name__': 'node_load1', 'instance': '10.0.0.7:9100'}, value=5.25, ...)]
    >>> prom.query("node_load1")                     # doctest: +SKIP
         instance  __name__      value            timestamp
    0  10.0.0.7:9100  node_load1   5.25  2026-11-25 06:30:00+00:00
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from opsflow.opsapi.errors import BadResponse
from opsflow.opsapi.gc_pause import paused_gc
from opsflow.opsapi.http import JSONClient
from opsflow.opsapi.redaction import register_secret
from opsflow.opsapi.transport import Transport

# pandas is imported where a frame is built, not on every process start (0.5 s of it)
if TYPE_CHECKING:
    import pandas as pd


class Sample(NamedTuple):
    """One series of an instant query's answer: its labels, its value (NaN stays NaN) and the
    sample's time (seconds since the epoch)."""

    labels: dict[str, str]
    value: float
    timestamp: float


def _sample(labels: dict[str, str], timestamp: Any, value: Any) -> Sample:
    try:
        number = float(value)  # Prometheus sends "NaN", "+Inf", "5.25"
    except (TypeError, ValueError):
        number = math.nan
    return Sample(labels, number, float(timestamp))


class PrometheusClient(JSONClient):
    """Read-only queries against Prometheus (`/api/v1/query`, `/api/v1/query_range`).

    Args:
        base_url: Prometheus root URL.
        bearer_token: optional token for a Prometheus behind an auth proxy.
        transport: timeout, TLS, retries, pool, proxy and audit log.
    """

    name = "Prometheus"

    def __init__(
        self,
        base_url: str,
        bearer_token: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        register_secret(bearer_token)
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        super().__init__(base_url, headers, transport)

    def samples(self, promql: str, at: datetime | None = None) -> list[Sample]:
        """Instant query: one `Sample` per series (a scalar answer: one without labels).
        What a runbook's signal reads: no pandas to import for it.

        GET: /api/v1/query
        """
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at.timestamp()
        data = self._data("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [_sample({}, *data["result"])]
        if data["resultType"] != "vector":
            raise BadResponse(f"query {promql!r} returned {data['resultType']}, not a vector")
        with paused_gc():
            return [_sample(s.get("metric", {}), *s["value"]) for s in data["result"]]

    def query(self, promql: str, at: datetime | None = None) -> pd.DataFrame:
        """Instant query: one row per series, label columns plus `value` and `timestamp`.

        GET: /api/v1/query
        """
        return _frame([(s.labels, s.timestamp, s.value) for s in self.samples(promql, at)])

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: float = 15.0
    ) -> pd.DataFrame:
        """Range query in long form: one row per series and sample.

        GET: /api/v1/query_range
        """
        params = {"query": promql, "start": start.timestamp(), "end": end.timestamp(), "step": step}
        data = self._data("/api/v1/query_range", params)
        if data["resultType"] != "matrix":
            raise BadResponse(f"range query {promql!r} returned {data['resultType']}, not a matrix")
        rows = [
            (series.get("metric", {}), ts, value)
            for series in data["result"]
            for ts, value in series.get("values", [])
        ]
        return _frame(rows)

    def _data(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        body = self.request("GET", path, params=params)
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise BadResponse(f"Prometheus query {params['query']!r} failed: {error}")
        data = body.get("data")
        if not isinstance(data, dict) or "resultType" not in data or "result" not in data:
            raise BadResponse(f"Prometheus answered {params['query']!r} without data.result")
        return data


def _frame(rows: list[tuple[dict[str, str], Any, Any]]) -> pd.DataFrame:
    """Labels as columns, `value` as float (NaN stays NaN), `timestamp` as UTC datetime."""
    import pandas as pd

    if not rows:
        return pd.DataFrame(
            {"value": pd.Series(dtype=float), "timestamp": pd.Series(dtype="datetime64[ns, UTC]")}
        )
    labels = pd.DataFrame([metric for metric, _, _ in rows])
    labels["value"] = pd.to_numeric([value for _, _, value in rows], errors="coerce")
    labels["timestamp"] = pd.to_datetime([float(ts) for _, ts, _ in rows], unit="s", utc=True)
    return labels
