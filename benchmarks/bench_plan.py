"""Time `metasync plan` on synthetic tenants, beside the orjson floor and the per-object baseline.

For each size it (1) generates the tenant under `benchmarks/data/` unless it exists, (2) times a minimal
orjson read of the same files that walks definitions and elements (the floor), (3) times the full
`metasync plan` (read → rules → validate → diff → plan) as a subprocess, once as configured (`auto`: the CSN
is read in a child process above 64 MiB) and once reading in the main process, (4) times the transform +
validate stage of metasync against `baseline.py` on the same source frames and checks that both give the same
result (three times by default, each in a fresh process; the medians are reported, every run is kept in
`results.json`). Each measurement runs in its own process; peak memory is the largest sum of the proportional
set sizes of that process and the processes it starts.

    python benchmarks/bench_plan.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OUT = HERE / "out"

# The rules of the benchmark configuration: one of every kind, as a team would write them.
BENCH_RULES: list[dict[str, Any]] = [
    {"kind": "scope", "exclude": {"name_glob": "*_TMP"}},
    {"kind": "naming", "target": "database", "template": "{env}_{space}"},
    {
        "kind": "naming",
        "target": "table",
        "replace": [{"pattern": r"^SAP\.", "with": "sap_"}],
        "max_length": 120,
    },
    {"kind": "type", "source_type": "cds.String", "glue_type": "varchar({length})", "max_length": 255},
    {"kind": "type", "source_type": "cds.Decimal", "glue_type": "double", "min_precision": 32},
    {
        "kind": "business",
        "table_description": "{business_name|name} ({kind}, space {space})",
        "column_comment": "{business_name|column} [{semantic_role}]",
    },
    {
        "kind": "parameters",
        "where": {"kinds": ["analytic_model", "fact"]},
        "table": {"measures": "{measures}", "dimensions": "{dimensions}", "steward": "{space}-stewards"},
        "column": {"semantic_usage": "{semantic_role}"},
    },
    {"kind": "tags", "tags": ["env:{env}", "kind:{kind}"]},
    {
        "kind": "value_map",
        "field": "aggregation",
        "map": {"SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max"},
    },
    {"kind": "default", "field": "description", "on": "assets", "value": "{business_name|name}"},
]
ENV = "prod"


def tenant(size: int) -> Path:
    """The tenant folder for `size` assets, generated once."""
    folder = DATA / f"tenant_{size}"
    if not (folder / ".complete").exists():
        sys.path.insert(0, str(HERE))
        from generate_tenant import generate

        counts = generate(size, folder)
        (folder / ".complete").write_text(orjson.dumps(counts).decode())
    return folder


def write_config(size: int, folder: Path, read_in_subprocess: str | bool = "auto") -> Path:
    path = DATA / (f"bench_{size}.yaml" if read_in_subprocess == "auto" else f"bench_{size}_in_process.yaml")
    config = {
        "source": {"kind": "csn", "path": str(folder), "read_in_subprocess": read_in_subprocess},
        "target": {"kind": "local", "path": str(OUT / f"catalog_{size}")},
        "audit": {"dir": str(OUT / "audit")},
        "environments": {"dev": {}, ENV: {}},
        "rules": BENCH_RULES,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                for child in children.read().split():
                    found += _process_tree(int(child))
    except OSError:  # gone meanwhile
        pass
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size of a process: its private memory plus its share of pages shared with others."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(argv: list[str]) -> dict[str, Any]:
    """Run a command as a child process; its wall time, exit code and peak memory.

    `peak_mib` is the largest sum of the proportional set sizes of the command and every process it started,
    sampled every 0.5 s, so a reader child counts while it runs (a spike shorter than that can be missed;
    sampling more often slows the measured run: reading `smaps_rollup` of a process of several GiB competes
    with its page faults).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    finished = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not finished.is_set():
            peak = max(peak, sum(_pss_kib(p) for p in _process_tree(proc.pid)))
            finished.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    finished.set()
    sampler.join()
    return {
        "wall_s": round(wall, 3),
        "rc": proc.returncode,
        "peak_mib": round(peak / 1024, 1),
        "stdout": out.decode(),
        "stderr": err.decode()[-2000:],
    }


# ------------------------------------------------------------------ the measured programs
def floor(root: Path) -> dict[str, int]:
    """Read every CSN file with orjson and walk definitions and elements, nothing more."""
    gc.disable()
    definitions = elements = size = 0
    for path in sorted(root.rglob("*.json")):
        data = path.read_bytes()
        size += len(data)
        doc = orjson.loads(data)
        for definition in (doc.get("definitions") or {}).values():
            definitions += 1
            for _element in (definition.get("elements") or {}).values():
                elements += 1
    return {"definitions": definitions, "elements": elements, "bytes": size}


def columns_frame(root: Path) -> dict[str, int]:
    """The floor plus the least a reader making frames must add: every element's name, owner and common fields
    gathered into one Polars frame (no lineage, hashes, type resolution, rules or validation). A bound on what
    any reader that holds the parsed documents as Python objects can reach."""
    import polars as pl

    gc.disable()
    names: list[str] = []
    values: list[Any] = []
    owner: list[int] = []
    definitions = 0
    for path in sorted(root.rglob("*.json")):
        doc = orjson.loads(path.read_bytes())
        for definition in (doc.get("definitions") or {}).values():
            elements = definition.get("elements") or {}
            names.extend(elements)
            values.extend(elements.values())
            owner.extend([definitions] * len(elements))
            definitions += 1
    fields = ("type", "length", "precision", "scale", "key", "notNull", "@EndUserText.label")
    dtypes = (pl.Utf8, pl.Int64, pl.Int64, pl.Int64, pl.Boolean, pl.Boolean, pl.Utf8)
    rows = [tuple(map(value.get, fields)) for value in values]
    frame = pl.DataFrame(
        {"owner": pl.Series(owner, dtype=pl.UInt32), "column": pl.Series(names, dtype=pl.Utf8)}
        | {
            field: pl.Series(column, dtype=dtype, strict=False)
            for field, dtype, column in zip(fields, dtypes, zip(*rows, strict=True), strict=True)
        }
    )
    return {"definitions": definitions, "columns": frame.height}


def stage(config_path: Path) -> dict[str, Any]:
    """Time metasync's transform + validate stage and the per-object baseline on the same source frames."""
    sys.path.insert(0, str(HERE))
    import polars as pl
    from baseline import objects_from_frames, transform_and_validate

    from metasync.config import load_config
    from metasync.pipeline import map_frames, read_source, validate_frames

    cfg = load_config(config_path, env=ENV)
    frames = read_source(cfg)
    gc.collect()
    gc.freeze()

    start = time.perf_counter()
    assets, columns = map_frames(cfg, frames)
    _, _, quarantined = validate_frames(assets, columns)
    vectorised = time.perf_counter() - start

    objects = objects_from_frames(frames.assets.to_dicts(), frames.columns.to_dicts())
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    base_assets, base_violations = transform_and_validate(objects, cfg.rules, cfg.env)
    per_object = time.perf_counter() - start

    # Same result? Compare the Glue fields of every asset and column.
    asset_fields = ["space", "name", "glue_database", "glue_table", "glue_description"]
    column_fields = ["space", "name", "column", "glue_column", "glue_type", "comment"]
    base_a = pl.DataFrame(
        [{f: a[f] for f in asset_fields} for a in base_assets], schema=dict.fromkeys(asset_fields, pl.Utf8)
    )
    base_c = pl.DataFrame(
        [{f: c[f] for f in column_fields} for a in base_assets for c in a["columns"]],
        schema=dict.fromkeys(column_fields, pl.Utf8),
    )

    def agreement(mine: pl.DataFrame, theirs: pl.DataFrame, keys: list[str], fields: list[str]) -> float:
        joined = mine.select(keys + fields).join(theirs, on=keys, how="full", suffix="_b", nulls_equal=True)
        same = pl.all_horizontal([pl.col(f).eq_missing(pl.col(f"{f}_b")) for f in fields])
        return round(joined.select(same.mean()).item() or 0.0, 6)

    return {
        "assets": assets.height,
        "columns": columns.height,
        "vectorised_s": round(vectorised, 3),
        "baseline_s": round(per_object, 3),
        "speedup": round(per_object / vectorised, 1),
        "assets_agree": agreement(assets, base_a, ["space", "name"], asset_fields[2:]),
        "columns_agree": agreement(columns, base_c, ["space", "name", "column"], column_fields[3:]),
        "quarantined": quarantined.height,
        "quarantined_baseline": len(base_violations),
    }


def audit_counts(stdout: str) -> dict[str, int] | None:
    """The counts of the run whose CLI output is `stdout`, from the summary in the audit folder it names."""
    found = re.search(r"audit: (\S+)", stdout)
    if not found:
        return None
    summary: dict[str, Any] = orjson.loads((Path(found.group(1)) / "summary.json").read_bytes())
    return summary["counts"]


# ------------------------------------------------------------------ driver
def stage_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The stage's runs (each in a fresh process) summed up: medians of both timings and of the speed-ups, the
    first run's agreement figures, and every run's timings."""
    failed = [run for run in runs if "error" in run]
    if failed:
        return failed[0]
    summary = dict(runs[0])
    for key in ("vectorised_s", "baseline_s", "speedup"):
        summary[key] = statistics.median(run[key] for run in runs)
    summary["runs"] = [{k: run[k] for k in ("vectorised_s", "baseline_s", "speedup")} for run in runs]
    return summary


def bench(size: int, stage_runs: int = 1, steady_state: bool = True) -> dict[str, Any]:
    folder = tenant(size)
    config = write_config(size, folder)
    shutil.rmtree(OUT / f"catalog_{size}", ignore_errors=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    floor_run = run_measured([*me, "floor", str(folder)])
    frame_run = run_measured([*me, "columns_frame", str(folder)])
    metasync = shutil.which("metasync") or "metasync"
    plan_run = run_measured([metasync, "plan", "-c", str(config), "--env", ENV])
    # The same plan reading the CSN in the main process (what `auto` does below 64 MiB of CSN).
    in_process = write_config(size, folder, read_in_subprocess=False)
    shutil.rmtree(OUT / f"catalog_{size}", ignore_errors=True)
    in_process_run = run_measured([metasync, "plan", "-c", str(in_process), "--env", ENV])
    stages = []
    for _ in range(stage_runs):
        run = run_measured([*me, "stage", str(config)])
        stages.append(orjson.loads(run["stdout"]) if run["rc"] == 0 else {"error": run["stderr"]})
    if steady_state:
        # A sync into an empty catalog, then the plan a scheduler runs next: every table exists and is unchanged.
        shutil.rmtree(OUT / f"catalog_{size}", ignore_errors=True)
        sync_run = run_measured([metasync, "sync", "-c", str(config), "--env", ENV])
        replan_run = run_measured([metasync, "plan", "-c", str(config), "--env", ENV])
    counts = orjson.loads((folder / ".complete").read_text())
    result = {
        "size": size,
        "tenant": counts,
        "floor": {k: v for k, v in floor_run.items() if k != "stderr"}
        | {"walk": orjson.loads(floor_run["stdout"])},
        "plan": {k: v for k, v in plan_run.items() if k not in ("stdout",)},
        "plan_in_process": {k: v for k, v in in_process_run.items() if k not in ("stdout",)},
        "stage": stage_summary(stages),
    }
    if steady_state:
        result["sync"] = {k: v for k, v in sync_run.items() if k != "stdout"}
        result["replan"] = {k: v for k, v in replan_run.items() if k != "stdout"}
        result["replan"]["counts"] = audit_counts(replan_run["stdout"])
    result["floor"].pop("stdout")
    result["columns_frame"] = {k: v for k, v in frame_run.items() if k not in ("stdout", "stderr")}
    result["columns_frame_over_floor"] = round(frame_run["wall_s"] / floor_run["wall_s"], 2)
    result["plan_over_floor"] = round(plan_run["wall_s"] / floor_run["wall_s"], 2)
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| assets | columns | CSN MiB | floor s | columns frame s | plan s | plan / floor | plan exit | plan peak MiB "
        "| read in-process: plan s | peak MiB "
        "| transform+validate s | per-object baseline s | speed-up | same result |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        s = r["stage"]
        lines.append(
            f"| {r['tenant']['assets']:,} | {r['tenant']['columns']:,} | {r['tenant']['bytes'] / 2**20:,.0f} "
            f"| {r['floor']['wall_s']:.2f} | {r['columns_frame']['wall_s']:.2f} "
            f"| {r['plan']['wall_s']:.2f} | {r['plan_over_floor']:.1f}× "
            f"| {r['plan']['rc']} | {r['plan']['peak_mib']:,.0f} "
            f"| {r['plan_in_process']['wall_s']:.2f} | {r['plan_in_process']['peak_mib']:,.0f} "
            f"| {s.get('vectorised_s', float('nan')):.2f} | {s.get('baseline_s', float('nan')):.2f} "
            f"| {s.get('speedup', float('nan')):.0f}× "
            f"| assets {s.get('assets_agree', 0):.2%}, columns {s.get('columns_agree', 0):.2%} |"
        )
    steady = [r for r in results if "sync" in r]
    if steady:
        lines += [
            "",
            "| assets | sync into an empty catalog s | sync exit | sync peak MiB "
            "| plan against the synced catalog s | plan exit | plan peak MiB | unchanged |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in steady:
            lines.append(
                f"| {r['tenant']['assets']:,} | {r['sync']['wall_s']:.2f} | {r['sync']['rc']} "
                f"| {r['sync']['peak_mib']:,.0f} | {r['replan']['wall_s']:.2f} | {r['replan']['rc']} "
                f"| {r['replan']['peak_mib']:,.0f} | {(r['replan']['counts'] or {}).get('unchanged', 0):,} |"
            )
    return "\n".join(lines)


def main() -> None:
    programs = {"floor": floor, "columns_frame": columns_frame, "stage": stage}
    if len(sys.argv) > 2 and sys.argv[1] in programs:
        program = programs[sys.argv[1]]
        sys.stdout.write(orjson.dumps(program(Path(sys.argv[2]))).decode())
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--stage-runs",
        type=int,
        default=3,
        help="times the transform + validate stage and the baseline run, each in a fresh process (medians shown)",
    )
    parser.add_argument(
        "--no-steady-state",
        dest="steady_state",
        action="store_false",
        help="skip the sync into an empty catalog and the plan against it that follows",
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        results.append(bench(size, args.stage_runs, args.steady_state))
        sys.stderr.write(orjson.dumps(results[-1], option=orjson.OPT_INDENT_2).decode() + "\n")
    (OUT / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    sys.stdout.write(table(results) + "\n")


if __name__ == "__main__":
    main()
