"""The lineage notebook runs top to bottom on the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_lineage.ipynb"


@pytest.mark.corpus
def test_lineage_notebook_executes(corpus_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("METASYNC_CORPUS", str(corpus_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "flowchart LR" in text
    # The data flow is drawn (matplotlib is a test dependency), and external objects are not counted as assets.
    assert any("image/png" in o.get("data", {}) for o in outputs if o.output_type == "display_data")
    assert "referenced but not exported" in text
    assert "SAP_SD_IL_C_SALESDOCUMENTITEMDEX_1_Delta -> " in text
