"""What every source offers: one call that returns the source frames."""

from __future__ import annotations

from typing import Protocol

from metasync.models import SourceFrames


class Source(Protocol):
    """A place metasync reads Datasphere objects from (CSN files, a tenant's REST APIs)."""

    def describe(self) -> str:
        """A short human name for messages, e.g. `CSN files under exports/`."""
        ...

    def read(self) -> SourceFrames:
        """Read every object in scope into validated frames; per-object problems become events."""
        ...
