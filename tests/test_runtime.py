"""The garbage-collector pause shared by runs in several threads: it must end as it began."""

from __future__ import annotations

import gc
import threading
from contextlib import ExitStack

import pytest

from metasync.runtime import gc_paused, gc_resumed


@pytest.fixture(autouse=True)
def collector_on() -> None:
    gc.enable()


def test_interleaved_pauses_and_resumes_end_with_the_collector_on() -> None:
    a, b = ExitStack(), ExitStack()
    a.enter_context(gc_paused())
    b.enter_context(gc_paused())
    resumed = b.enter_context(ExitStack())
    resumed.enter_context(gc_resumed())
    assert gc.isenabled()  # B writes with the collector on
    a.close()  # A ends while B is still resumed
    assert gc.isenabled()
    resumed.close()
    assert not gc.isenabled()  # B is paused again
    b.close()
    assert gc.isenabled()


def test_a_pause_keeps_a_collector_that_was_off_off() -> None:
    gc.disable()
    with gc_paused():
        with gc_resumed():
            assert gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_runs_in_threads_leave_the_collector_on() -> None:
    # Thread A pauses, B pauses and resumes (to write), A ends its pause while B is resumed, then B ends.
    steps = [threading.Event() for _ in range(4)]

    def a() -> None:
        with gc_paused():
            steps[0].set()
            steps[1].wait(timeout=10)
        steps[2].set()

    def b() -> None:
        steps[0].wait(timeout=10)
        with gc_paused():
            with gc_resumed():
                steps[1].set()
                steps[2].wait(timeout=10)
            steps[3].set()

    threads = [threading.Thread(target=a, daemon=True), threading.Thread(target=b, daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert steps[3].is_set()
    assert gc.isenabled()
