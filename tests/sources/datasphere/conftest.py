"""Fixtures for the Datasphere REST source: a fake tenant on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .datasphere_tenant import FakeTenant


@pytest.fixture
def tenant() -> Iterator[FakeTenant]:
    """A running fake tenant with no content."""
    fake = FakeTenant().start()
    try:
        yield fake
    finally:
        fake.stop()
