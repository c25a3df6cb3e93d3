"""Process-level helpers shared by the stages."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# The collector's switch is one per process, so runs in several threads share it: it is off while any of them
# holds a pause (and no resume), and it comes back as it was before the first pause once the last one ends.
_lock = threading.Lock()
_pauses = 0
_resumes = 0
_enabled_before = True


def _apply() -> None:
    if _pauses and not _resumes:
        gc.disable()
    elif _enabled_before or _resumes:
        gc.enable()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work.

    Reading and planning allocate millions of small objects that all stay alive until the stage ends; the
    collector would scan them again and again for nothing. Reference counting still frees everything else.
    Safe to nest and to use from several threads at once.
    """
    global _pauses, _enabled_before
    with _lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
        _pauses += 1
        _apply()
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            _apply()


@contextmanager
def gc_resumed() -> Iterator[None]:
    """Let the collector run again inside a `gc_paused` block (for long stages such as writing to Glue)."""
    global _resumes
    with _lock:
        _resumes += 1
        gc.enable()
    try:
        yield
    finally:
        with _lock:
            _resumes -= 1
            _apply()
