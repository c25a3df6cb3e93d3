"""Fixtures for the Datasphere REST source: a fake tenant on 127.0.0.1 and the CSN corpus."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasphere_tenant import FakeTenant  # noqa: E402


@pytest.fixture
def tenant() -> Iterator[FakeTenant]:
    """A running fake tenant with no content."""
    fake = FakeTenant().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The SAP CSN corpus, read in place (skips the test when it is absent)."""
    configured = os.environ.get("METASYNC_CORPUS")
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / "../shared/corpus/datasphere"
    if not path.is_dir():
        pytest.skip(f"the CSN corpus is not at {path}; set METASYNC_CORPUS to its folder")
    return path.resolve()
