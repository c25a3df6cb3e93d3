"""The notebooks run top to bottom: the quickstart on the example export, the lineage one on the SAP corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _execute(name: str) -> tuple[list[dict[str, Any]], str]:
    """Run a notebook in a fresh kernel; its outputs, and their text joined."""
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return outputs, text


def test_quickstart_notebook_executes() -> None:
    outputs, text = _execute("01_quickstart.ipynb")
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert '"status": "succeeded"' in text
    assert "SALES_ANALYSIS_AM" in text


def test_lineage_notebook_executes_on_the_corpus(corpus_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASYNC_CORPUS", str(corpus_path))  # the kernel inherits it
    outputs, text = _execute("02_lineage.ipynb")
    assert not [o for o in outputs if o.get("output_type") == "error"], [
        (o.get("ename"), o.get("evalue")) for o in outputs if o.get("output_type") == "error"
    ]
    # The impact path from the delta table to the analytic model, and the Mermaid text, were printed.
    assert "CORPUS.SAP_SD_IL_C_SALESDOCUMENTITEMDEX_1_Delta -> " in text
    assert "flowchart" in text
