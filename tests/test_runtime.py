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
    barrier = threading.Barrier(4)

    def run() -> None:
        with gc_paused():
            barrier.wait()
            with gc_resumed():
                barrier.wait()
            barrier.wait()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
