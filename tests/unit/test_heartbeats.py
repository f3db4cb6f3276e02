"""A runbook's run ends without waiting for Prefect's heartbeat thread (which sleeps in
one-second steps: 0-1 s at the end of every run), and sends no heartbeat after it ends; any
other flow keeps Prefect's own behaviour. Fails when a Prefect release changes the heartbeat
context manager opsflow wraps.

The engine is a stand-in whose heartbeat is held in flight, so the thread's state at the run's
end is known, not timed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import prefect.flow_engine
import pytest
from prefect import Flow

from opsflow.flows.runbooks.runbook_flow import _heartbeats, runbook


class Engine:
    """What `_send_heartbeats` reads of Prefect's flow run engine; each heartbeat is held
    until `release` is set."""

    heartbeat_seconds = 30

    def __init__(self, flow: Flow) -> None:  # type: ignore[type-arg]
        self.flow = flow
        self.flow_run = None
        self.logger = logging.getLogger("test-heartbeats")
        self.sent = 0
        self.in_flight = threading.Event()
        self.release = threading.Event()

    def _build_heartbeat_event_template(self) -> tuple[dict, list]:
        return {}, []

    def _emit_flow_run_heartbeat(self, resource: dict, related: list) -> None:
        self.sent += 1
        self.in_flight.set()
        self.release.wait(10)


@pytest.fixture
def new_threads() -> Iterator[list[threading.Thread]]:
    found: list[threading.Thread] = []
    yield found
    for thread in found:
        thread.join(5)


@pytest.fixture
def joined(monkeypatch) -> list[threading.Thread]:
    """The threads joined from the test's own thread (the engine's end joins from there)."""
    calls: list[threading.Thread] = []
    join = threading.Thread.join
    test_thread = threading.current_thread()

    def recorded(self: threading.Thread, timeout: float | None = None) -> None:
        if threading.current_thread() is test_thread:
            calls.append(self)
        join(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", recorded)
    return calls


def _run(engine: Engine, new_threads: list[threading.Thread]) -> threading.Thread:
    before = set(threading.enumerate())
    with prefect.flow_engine._send_heartbeats(engine):  # as the sync engine calls it
        assert engine.in_flight.wait(5), "no heartbeat was sent at the run's start"
        [thread] = set(threading.enumerate()) - before
        new_threads.append(thread)
    return thread


def test_the_engine_uses_opsflows_heartbeats() -> None:
    assert prefect.flow_engine._send_heartbeats is _heartbeats


def test_a_runbooks_run_ends_without_waiting_for_the_heartbeat_thread(new_threads, joined) -> None:
    engine = Engine(runbook(name="noop")(lambda: None))
    thread = _run(engine, new_threads)
    assert thread not in joined
    assert thread.is_alive()  # its heartbeat still in flight: the run did not wait for it
    engine.release.set()
    thread.join(5)
    assert not thread.is_alive()
    assert engine.sent == 1  # nothing sent after the run's end


def test_another_flows_run_still_waits_for_it(new_threads, joined) -> None:
    engine = Engine(Flow(fn=lambda: None, name="plain"))
    timer = threading.Timer(0.2, engine.release.set)
    timer.start()
    thread = _run(engine, new_threads)
    assert thread in joined  # Prefect joined it
    assert engine.sent == 1
