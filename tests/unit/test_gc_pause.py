"""The collector is held off while answers are decoded, and always comes back as it was."""

from __future__ import annotations

import gc
import threading

import pytest

from opsflow.opsapi.gc_pause import paused_gc


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_off_inside_on_after_even_when_the_block_raises():
    with pytest.raises(ValueError), paused_gc():
        assert not gc.isenabled()
        raise ValueError("bad JSON")
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_when_the_last_does():
    first_in, first_out = threading.Event(), threading.Event()

    def other() -> None:
        with paused_gc():
            first_in.set()
            first_out.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    first_in.wait(5)
    with paused_gc():
        first_out.set()
        thread.join(5)
        assert not gc.isenabled()  # the other pause ended; this one still holds
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_program_stays_off():
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()
