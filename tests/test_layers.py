"""Each outside library stays in its layer: networkx in graph/, boto3 in the Glue target, httpx in the client."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "metasync"

ALLOWED = {
    "networkx": ("graph/", "api.py"),  # api.py only names the graph type it returns
    "boto3": ("targets/glue",),
    "botocore": ("targets/glue",),
    "httpx": ("sources/datasphere/client.py",),
    "rich": ("cli.py",),
    "typer": ("cli.py",),
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_libraries_stay_in_their_layer() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for library in imported_roots(path) & set(ALLOWED):
            if not relative.startswith(ALLOWED[library]):
                offenders.append(f"{relative} imports {library}")
    assert offenders == []


def test_the_scan_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import networkx as nx\nfrom boto3.session import Session\nfrom . import local\n")
    assert imported_roots(sample) == {"networkx", "boto3"}
