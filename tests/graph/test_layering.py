"""Only metasync.graph imports networkx at run time (imports for type checking only are allowed)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "metasync"


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Top-level module names imported outside `if TYPE_CHECKING:` blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_only_the_graph_package_imports_networkx() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "graph" not in path.relative_to(PACKAGE).parts
        and "networkx" in _runtime_imports(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []
    assert "networkx" in _runtime_imports(
        ast.parse((PACKAGE / "graph" / "lineage.py").read_text(encoding="utf-8"))
    )
