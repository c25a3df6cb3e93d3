"""The transform and validate code stays vectorised: no per-row Python over frames."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from metasync.transform.rules import Rule, compile_rules

PACKAGE = Path(__file__).resolve().parents[2] / "metasync"
ROW_METHODS = {"map_elements", "map_rows", "apply", "iter_rows", "rows", "to_dicts", "row", "iter_columns"}


@dataclass(frozen=True)
class Hit:
    """One piece of per-row Python: where (first and last line of the construct) and what."""

    file: str
    first: int
    last: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.first} {self.what}"


def _row_python(path: Path) -> list[Hit]:
    """Every call of a row-wise Polars method and every loop over a frame's values."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ROW_METHODS
        ):
            found.append(Hit(path.name, node.lineno, node.end_lineno or node.lineno, f".{node.func.attr}()"))
        iters = []
        if isinstance(node, ast.For):
            iters.append((node.iter, node.lineno, node.iter.end_lineno))
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            iters.extend((g.iter, node.lineno, node.end_lineno) for g in node.generators)
        for it, first, last in iters:
            if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "to_list":
                found.append(Hit(path.name, first, last or first, "loop over .to_list()"))
    return sorted(found, key=lambda hit: hit.first)


WAIVER = "# row-python-ok:"


def _waived(path: Path, hit: Hit) -> bool:
    """A hit is allowed only where the construct says why (on one of its lines), e.g. a digest over the few
    colliding names."""
    lines = path.read_text(encoding="utf-8").splitlines()[hit.first - 1 : hit.last]
    return any(WAIVER in line and len(line.split(WAIVER, 1)[1].strip()) > 20 for line in lines)


def test_no_per_row_python_in_transform_and_validate():
    files = sorted((PACKAGE / "transform").rglob("*.py")) + sorted((PACKAGE / "validate").rglob("*.py"))
    assert files
    offenders = [hit for f in files for hit in _row_python(f) if not _waived(f, hit)]
    assert [str(hit) for hit in offenders] == []


def test_a_waiver_needs_a_reason(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(s):\n"
        "    a = [v for v in s.to_list()]  # row-python-ok: only the few names that collide, needs SHA-256\n"
        "    b = [v for v in s.to_list()]  # row-python-ok:\n"
        "    c = [\n        v for v in s.to_list()\n    ]  # row-python-ok: a formatter moved this reason down\n"
        "    d = [v for v in s.to_list()]\n"
        "    # row-python-ok: a reason on another statement does not count\n"
    )
    hits = _row_python(sample)
    assert [_waived(sample, h) for h in hits] == [True, False, True, False]


def test_the_scan_finds_row_python(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(df, s):\n"
        "    df.select(x=s.map_elements(str))\n"
        "    for r in df.iter_rows():\n        pass\n"
        "    return [v + 1 for v in s.to_list()]\n"
    )
    assert [h.what for h in _row_python(sample)] == [
        ".map_elements()",
        ".iter_rows()",
        "loop over .to_list()",
    ]


_names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
_RULES = TypeAdapter(list[Rule]).validate_python(
    [
        {"kind": "naming", "target": "database", "template": "{env}_{space}", "case": "lower"},
        {
            "kind": "naming",
            "template": "{kind}_{name}",
            "replace": [{"pattern": r"\W+", "with": "_"}],
            "max_length": 20,
        },
        {"kind": "naming", "target": "column", "template": "{column}", "case": "lower", "max_length": 30},
        {"kind": "type", "source_type": "cds.String", "glue_type": "varchar({length})", "max_length": 255},
        {
            "kind": "business",
            "table_description": "{business_name|name}",
            "column_comment": "{column} {semantic_role}",
        },
        {"kind": "parameters", "table": {"m": "{measures}"}, "column": {"r": "{semantic_role}"}},
        {"kind": "tags", "tags": ["{space}"]},
        {"kind": "default", "field": "description", "on": "assets", "value": "{name}"},
    ]
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    names=st.lists(_names, min_size=1, max_size=8, unique=True),
    columns_per_asset=st.integers(min_value=0, max_value=4),
    lengths=st.lists(st.one_of(st.none(), st.integers(1, 70000)), min_size=4, max_size=4),
)
def test_rules_keep_row_counts_and_keys(make_frames, names, columns_per_asset, lengths):
    assets, columns = make_frames(
        [{"space": "S", "name": n} for n in names],
        [
            {"space": "S", "name": n, "column": f"{n}#{i}", "length": lengths[i]}
            for n in names
            for i in range(columns_per_asset)
        ],
    )
    out_assets, out_columns = compile_rules(_RULES, env="dev")(assets.lazy(), columns.lazy())
    out_assets, out_columns = out_assets.collect(), out_columns.collect()
    assert out_assets.select("space", "name").equals(assets.select("space", "name"))
    assert out_columns.select("space", "name", "column").equals(columns.select("space", "name", "column"))
    assert out_assets["glue_table"].str.len_chars().max() <= 20
    assert (out_columns.height == 0) or out_columns["glue_column"].str.len_chars().max() <= 30
    typed = out_columns.filter(pl.col("length") <= 255)
    assert typed.select((pl.col("glue_type") == pl.format("varchar({})", pl.col("length"))).all()).item()
