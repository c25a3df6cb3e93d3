"""Fixtures shared by the whole suite: the repository, the example export and the SAP CSN corpus."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def find_corpus() -> Path | None:
    """The SAP CSN corpus: $METASYNC_CORPUS, else ../shared/corpus/datasphere beside the repository."""
    candidates = [os.environ.get("METASYNC_CORPUS"), REPO.parent / "shared" / "corpus" / "datasphere"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    path = find_corpus()
    if path is None:
        pytest.skip(
            "the SAP CSN corpus is not here (set METASYNC_CORPUS or place it at ../shared/corpus/datasphere); "
            "the hand-written fixtures cover the same shapes"
        )
    return path


@pytest.fixture
def example_workspace(tmp_path: Path) -> Path:
    """A private copy of examples/ (export + quickstart.yaml) so runs do not touch the repository."""
    shutil.copytree(EXAMPLES / "exports", tmp_path / "exports")
    shutil.copy(EXAMPLES / "quickstart.yaml", tmp_path / "quickstart.yaml")
    return tmp_path
