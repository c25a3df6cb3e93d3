"""Process-level helpers shared by the stages."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work.

    Reading and planning allocate millions of small objects that all stay alive until the stage ends; the
    collector would scan them again and again for nothing. Reference counting still frees everything else.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def gc_resumed() -> Iterator[None]:
    """Let the collector run again inside a `gc_paused` block (for long stages such as writing to Glue)."""
    enabled = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not enabled:
            gc.disable()
