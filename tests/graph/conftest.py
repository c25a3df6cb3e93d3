"""Fixtures for the graph tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from graph_frames import corpus_dir


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared CSN corpus; skips the test when it is absent."""
    path = corpus_dir()
    if path is None:
        pytest.skip("CSN corpus not found (set METASYNC_CORPUS or place it at ../shared/corpus/datasphere)")
    return path
