"""Retry-After as servers really send it, and the retry policy's shape."""

from __future__ import annotations

import pytest

from opsflow.opsapi.http import IDEMPOTENT_METHODS, LenientRetry, make_retry


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("1.5", 1.5),  # urllib3 itself raises on a fraction
        ("-3", 0.0),
        ("3600", LenientRetry.RETRY_AFTER_CAP),  # no server stalls a runbook for an hour
        ("soon", 0.0),  # garbage: fall back to the backoff
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past
    ],
)
def test_retry_after_is_parsed_leniently_and_capped(header, seconds):
    assert LenientRetry().parse_retry_after(header) == seconds


def test_only_idempotent_methods_are_retried_by_default():
    retry = make_retry(3, 0.5, IDEMPOTENT_METHODS)

    assert retry.is_retry("GET", 503) and retry.is_retry("PUT", 429)
    assert not retry.is_retry("POST", 503)
    assert not retry.is_retry("GET", 500)  # a server error that is no outage is not retried
