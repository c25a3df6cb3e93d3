"""One run: extract → map → rules → validate → diff → plan → write → audit."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from metasync.audit.writer import AuditLog, new_run_id
from metasync.config import Config, CsnSourceConfig, LocalTargetConfig, load_config
from metasync.diff import column_changes, content_hashes, diff_tables, schema_edited_in_target, stale_tables
from metasync.errors import ExitCode, MetasyncError, RuleError, Terminated
from metasync.graph.planning import CYCLE_HINT, CYCLE_PREFIX, cycle_events, plan_batches
from metasync.models import DATA_FLOW_EDGE_KINDS, Event, SourceFrames
from metasync.runtime import gc_paused, gc_resumed
from metasync.sources.base import Source
from metasync.targets.base import ProgressCallback, Target, TargetState, WriteRequest, outcome_frame
from metasync.targets.payload import database_input, finalize_table_input
from metasync.transform.conflicts import (
    CONFLICT_HINTS,
    conflict_events,
    detect_conflicts,
    keep_target_parameters,
    resolve_conflicts,
    with_text_hash,
)
from metasync.transform.mapping import (
    ASSET_FIELD_PARAMETERS,
    ASSET_KEY,
    COLUMN_FIELD_PARAMETERS,
    collision_suffix,
    finish_text,
    map_assets,
    map_columns,
    refresh_parameters,
    resolve_names,
    table_inputs,
    with_asset_key,
)
from metasync.transform.rules import CompiledRules, compile_rules
from metasync.validate.glue_limits import find_violations

log = logging.getLogger(__name__)

ConfigInput = str | os.PathLike[str] | dict[str, Any] | Config
ProgressFactory = Callable[[int], ProgressCallback]

# The plan file every run writes, a failed one too, with the same columns (queries over the audit history read
# them all as one table).
PLAN_FILE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "space": pl.Utf8,
    "name": pl.Utf8,
    "kind": pl.Utf8,
    "glue_database": pl.Utf8,
    "glue_table": pl.Utf8,
    "action": pl.Utf8,
    "reason": pl.Utf8,
    "hash": pl.Utf8,
    "version_id": pl.Utf8,
    "conflict_type": pl.Utf8,
    "hint": pl.Utf8,
    "batch": pl.Int32,
    "priority": pl.Int32,
    "upstreams": pl.Utf8,  # the data-flow upstreams' ASSET_IDs, comma-separated (a list in `SyncResult.plan`)
    "status": pl.Utf8,
    "column_changes": pl.Utf8,
    "error_code": pl.Utf8,
}
WRITE_ACTIONS = ("create", "update", "delete")
UNREAD_PREFIX = "the source was read in part"
UPSTREAM_HINT = "Fix the upstream asset named in the reason; this one follows on the next run."


@dataclass
class SyncResult:
    """What a run produced: the summary (as summary.json), the audit events and the frames."""

    summary: dict[str, Any]
    events: pl.DataFrame
    assets: pl.DataFrame
    columns: pl.DataFrame
    plan: pl.DataFrame
    edges: pl.DataFrame = field(default_factory=pl.DataFrame)
    column_lineage: pl.DataFrame = field(default_factory=pl.DataFrame)
    audit_dir: Path | None = None

    @property
    def status(self) -> str:
        return str(self.summary["status"])

    @property
    def exit_code(self) -> int:
        return int(ExitCode.OK if self.status == "succeeded" else ExitCode.PARTIAL)


# ------------------------------------------------------------------ connectors
def make_source(config: Config) -> Source:
    if isinstance(config.source, CsnSourceConfig):
        from metasync.sources.csn import CsnSource

        return CsnSource(config.source)
    from metasync.sources.datasphere.source import DatasphereSource

    return DatasphereSource(config.source, audit_dir=config.audit.dir)


def make_target(config: Config) -> Target:
    if isinstance(config.target, LocalTargetConfig):
        from metasync.targets.local import LocalTarget

        return LocalTarget(config.target)
    from metasync.targets.glue import GlueTarget

    return GlueTarget(config.target)


# ------------------------------------------------------------------ stages
def read_source(config: Config) -> SourceFrames:
    """Read the configured source into frames (run-level problems raise)."""
    return make_source(config).read()


def map_frames(
    config: Config, frames: SourceFrames, rules: CompiledRules | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Source frames → Glue-mapped assets and columns (rules applied, names resolved, text within limits).

    Both carry `_asset`, the internal key of each row's asset (see `with_asset_key`); `run` leaves it out of
    its result.

    `rules` are the configuration's rules compiled already (compiled here when not given).
    """
    apply_rules = rules if rules is not None else compile_rules(config.rules, env=config.env)
    source_assets, source_columns = with_asset_key(frames.assets, frames.columns)
    # The in-memory engine: the streaming one returns these frames in dozens of chunks, which made the name
    # resolution and the limit checks after it about 0.2 s slower at 2 million columns than rechunking costs.
    mapped = pl.collect_all(
        [
            map_assets(source_assets.lazy(), source_columns.lazy(), frames.edges.lazy()),
            map_columns(source_columns.lazy()),
        ],
        engine="in-memory",
    )
    # Rules read assets and columns from each other; on mapped frames already computed, Polars does not redo
    # the mapping for every such read (about half the stage's time at 2 million columns).
    assets, columns = apply_rules(mapped[0].lazy(), mapped[1].lazy())
    assets_df, columns_df = pl.collect_all([assets, columns], engine="in-memory")
    # Fields that value_map and default rules rewrote: their Parameters follow.
    written = [(rule.on, rule.field) for rule in config.rules if rule.kind in ("value_map", "default")]
    assets_df = refresh_parameters(
        assets_df, {f for on, f in written if on != "columns"}, ASSET_FIELD_PARAMETERS
    )
    columns_df = refresh_parameters(
        columns_df, {f for on, f in written if on != "assets"}, COLUMN_FIELD_PARAMETERS
    )
    return resolve_names(*finish_text(assets_df, columns_df))


def _quarantine(assets: pl.DataFrame, columns: pl.DataFrame) -> pl.DataFrame:
    """One row per quarantined asset with its reasons."""
    violations = find_violations(assets, columns)
    return violations.group_by("space", "name", maintain_order=True).agg(
        reason=pl.concat_str(
            [pl.col("message"), pl.when(pl.col("subject").is_not_null()).then(pl.format(" ({})", "subject"))],
            ignore_nulls=True,
        ).str.join("; "),
        hint=pl.col("hint").first(),
        checks=pl.col("check"),
    )


def validate_frames(
    assets: pl.DataFrame, columns: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Validate the mapped frames against Glue's limits: the assets and columns that pass, and one row per
    quarantined asset with its reasons (an asset with one bad column is quarantined whole)."""
    quarantined = _quarantine(assets, columns)
    if quarantined.is_empty():
        return assets, columns, quarantined
    return (
        assets.join(quarantined, on=["space", "name"], how="anti"),
        columns.join(quarantined, on=["space", "name"], how="anti"),
        quarantined,
    )


def _held(plan: pl.DataFrame) -> pl.DataFrame:
    return plan.filter(pl.col("action").is_in(["quarantine", "conflict"])).select(
        "space", "name", pl.col("reason").fill_null("held")
    )


def _unread_upstreams(frames: SourceFrames) -> pl.DataFrame:
    """After a partial read: assets with columns typed by fallback that read from an asset this run did not
    read (it may sit in the skipped file or space), with the reason to hold them. Written now, their columns
    would turn to `string`; held, their tables keep their types until the source is read whole."""
    empty = pl.DataFrame(schema={"space": pl.Utf8, "name": pl.Utf8, "reason": pl.Utf8})
    if not frames.incomplete or frames.edges.is_empty():
        return empty
    guessed = frames.columns.filter(pl.col("type_origin") == "fallback").select("space", "name").unique()
    unread = (
        frames.edges.filter(pl.col("kind").is_in(DATA_FLOW_EDGE_KINDS))
        .join(
            frames.assets.select("space", "name"),
            left_on=["source_space", "source_name"],
            right_on=["space", "name"],
            how="anti",
        )
        .select(
            pl.col("target_space").alias("space"),
            pl.col("target_name").alias("name"),
            pl.concat_str("source_space", "source_name", separator=".").alias("upstream"),
        )
        .join(guessed, on=["space", "name"], how="semi")
    )
    if unread.is_empty():
        return empty
    return (
        unread.group_by("space", "name")
        .agg(pl.col("upstream").unique().sort())
        .select(
            "space",
            "name",
            reason=pl.format(
                UNREAD_PREFIX
                + " and upstream {} was not read: the types of this asset's columns are unknown, "
                "so its table is left as it is",
                pl.col("upstream").list.join(", "),
            ),
        )
        .sort("space", "name")
    )


def _summary(
    run_id: str,
    status: str,
    dry_run: bool,
    started: datetime,
    plan: pl.DataFrame,
    calls: dict[str, int],
    retries: dict[str, int],
) -> dict[str, Any]:
    def count(action: str, statuses: tuple[str, ...] = ("ok", "planned")) -> int:
        return plan.filter((pl.col("action") == action) & pl.col("status").is_in(statuses)).height

    assets = (
        plan.filter(pl.col("action") != "delete").select("space", "name").n_unique() if plan.height else 0
    )
    return {
        "run_id": run_id,
        "status": status,
        "dry_run": dry_run,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "counts": {
            "assets": assets,
            "created": count("create"),
            "updated": count("update"),
            "unchanged": count("unchanged"),
            "deleted": count("delete"),
            "failed": plan.filter(pl.col("status") == "failed").height,
            "skipped": plan.filter((pl.col("action") == "skip") | (pl.col("status") == "skipped")).height,
            "quarantined": count("quarantine", ("held",)),
            "conflicts": count("conflict", ("held",)),
        },
        "api_calls": calls,
        "api_retries": retries,
    }


def _asset_events(plan: pl.DataFrame, dry_run: bool) -> pl.DataFrame:
    """One audit event per plan row, built as a frame."""
    severity = (
        pl.when(pl.col("status") == "failed")
        .then(pl.lit("error"))
        .when(pl.col("action").is_in(["quarantine", "conflict"]))
        .then(pl.lit("error"))
        .when((pl.col("action") == "skip") | pl.col("status").is_in(["skipped", "stopped"]))
        .then(pl.lit("warning"))
        .otherwise(pl.lit("info"))
    )
    verb = pl.lit("would be " if dry_run else "")
    message = pl.concat_str(
        [
            pl.col("space"),
            pl.lit("."),
            pl.col("name"),
            pl.lit(" → "),
            pl.col("glue_database").fill_null("?"),
            pl.lit("."),
            pl.col("glue_table").fill_null("?"),
            pl.lit(": "),
            pl.when(pl.col("status") == "failed")
            .then(pl.lit("failed"))
            .when(pl.col("status") == "skipped")
            .then(pl.lit("skipped"))
            .when(pl.col("status") == "stopped")
            .then(pl.lit("not written"))
            .otherwise(
                pl.col("action")
                .replace(
                    {
                        "create": "created",
                        "update": "updated",
                        "unchanged": "unchanged",
                        "delete": "deleted",
                        "skip": "skipped",
                        "quarantine": "quarantined",
                        "conflict": "held as a conflict",
                    }
                )
                .pipe(
                    lambda e: pl.when(pl.col("action").is_in(list(WRITE_ACTIONS))).then(verb + e).otherwise(e)
                )
            ),
            pl.when(pl.col("reason").is_not_null()).then(pl.lit(": ") + pl.col("reason")),
        ],
        ignore_nulls=True,
    )
    details = pl.struct(
        "kind",
        "glue_database",
        "glue_table",
        "batch",
        "priority",
        pl.col("error_code"),
        pl.col("column_changes"),
    ).struct.json_encode()
    return plan.select(
        event=pl.lit("asset"),
        severity=severity,
        space="space",
        name="name",
        action="action",
        status="status",
        message=message,
        details=details,
        hint="hint",
    )


# ------------------------------------------------------------------ the run
def run(
    config: ConfigInput,
    *,
    env: str | None = None,
    dry_run: bool = False,
    delete_stale: bool | None = None,
    progress: ProgressFactory | None = None,
) -> SyncResult:
    """Sync (or, with `dry_run`, plan) once. Run-level problems raise `MetasyncError` after the audit is written."""
    cfg = load_config(config, env=env)
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    audit = AuditLog(run_id)
    audit.prepare(cfg.audit.dir)
    audit.add(
        Event(
            "run_started",
            "info",
            f"run {run_id} started ({'dry run' if dry_run else 'sync'}"
            f"{', environment ' + cfg.env if cfg.env else ''}).",
            details={
                "source": cfg.source.kind,
                "target": cfg.target.kind,
                "env": cfg.env,
                "dry_run": dry_run,
            },
        )
    )
    reached: list[Target] = []
    planned: list[pl.DataFrame] = []  # the plan, once it goes to the target
    try:
        with gc_paused():  # resumed for the write stage, see `_write`
            return _run(cfg, audit, run_id, started, dry_run, delete_stale, progress, reached, planned)
    except BaseException as exc:  # the audit of a failed run is written too, whatever ended it (Ctrl-C too)
        if isinstance(exc, MetasyncError):
            message, hint = exc.message, exc.hint
        elif isinstance(exc, Terminated):
            message, hint = "the run was stopped (SIGTERM).", "Run it again; what was written before is kept."
        elif isinstance(exc, KeyboardInterrupt):
            message, hint = "the run was interrupted.", "Run it again; what was written before is kept."
        else:
            message, hint = (
                f"internal error: {type(exc).__name__}: {exc}",
                "Run again with --debug and report it.",
            )
        outcomes = list(reached[0].calls.outcomes) if reached else []
        # The plan with what became of each write, once writing began or a stop cut it short; a failure before
        # the first write (a catalog that cannot be written) wrote nothing, and its plan file says nothing.
        cut_short = bool(outcomes) or isinstance(exc, KeyboardInterrupt)
        done = _written_so_far(outcomes, planned[0] if planned and cut_short else None)
        if outcomes:
            message += (
                f" {len(outcomes)} table write(s) were done before it stopped; the plan lists them, and the "
                "rest as not written."
            )
        audit.add(Event("run_failed", "error", message, hint=hint, details={"error": type(exc).__name__}))
        audit.add_frame(_asset_events(done, dry_run))
        calls = reached[0].calls.as_dict() if reached else {}
        summary = _summary(run_id, "failed", dry_run, started, done, calls, {})
        written = audit.write(cfg.audit.dir, summary, done)
        if isinstance(exc, MetasyncError):
            exc.audit_dir = written
        raise


def _written_so_far(outcomes: list[dict[str, str | None]], plan: pl.DataFrame | None) -> pl.DataFrame:
    """The plan file of a run stopped while writing: the plan it was writing (when it got that far), each
    write with its outcome or, not reached, status `stopped`; without a plan, the target's outcome rows."""
    done = outcome_frame(outcomes)
    if plan is None:
        return _plan_file(done.rename({"message": "reason"}))
    writes = pl.col("action").is_in(list(WRITE_ACTIONS))
    not_reached = plan.with_columns(status=pl.when(writes).then(pl.lit("stopped")).otherwise("status"))
    merged = _with_outcomes(not_reached, done)  # a write with an outcome takes its status
    stopped = pl.col("status") == "stopped"
    return _plan_file(
        merged.with_columns(
            reason=pl.when(stopped).then(pl.lit("not written: the run stopped first")).otherwise("reason")
        )
    )


def _plan_file(plan: pl.DataFrame) -> pl.DataFrame:
    """A plan as its file holds it: the columns of PLAN_FILE_SCHEMA (those it lacks empty), the upstreams as
    text."""
    if isinstance(plan.schema.get("upstreams"), pl.List):
        plan = plan.with_columns(pl.col("upstreams").list.join(","))
    empty = pl.DataFrame(schema=PLAN_FILE_SCHEMA)
    return pl.concat([empty, plan], how="diagonal_relaxed").select(list(PLAN_FILE_SCHEMA))


def _run(
    cfg: Config,
    audit: AuditLog,
    run_id: str,
    started: datetime,
    dry_run: bool,
    delete_stale: bool | None,
    progress: ProgressFactory | None,
    reached: list[Target],
    planned: list[pl.DataFrame],
) -> SyncResult:
    t0 = time.perf_counter()
    try:
        rules = compile_rules(cfg.rules, env=cfg.env)  # bad rules fail before any data moves
    except RuleError as exc:
        exc.message = f"{cfg.origin}: {exc.message}"  # name the file, as other configuration errors do
        raise
    frames = read_source(cfg)
    audit.extend(frames.events)
    if frames.assets.is_empty() and not frames.incomplete:  # a partial read's own events say what is missing
        audit.add(
            Event(
                "source_empty",
                "warning",
                f"the source ({make_source(cfg).describe()}) holds no objects to sync.",
                hint="Check source.path; a mistyped folder reads as empty."
                if isinstance(cfg.source, CsnSourceConfig)
                else "Check source.spaces and source.object_types, and that the technical user is a member of "
                "the spaces.",
            )
        )
    assets, columns = map_frames(cfg, frames, rules)
    audit.extend(naming_events(assets, columns) + decimal_events(columns))
    desired, quarantined = _desired_tables(assets, columns)

    target = make_target(cfg)
    reached.append(target)
    state = target.read_state(assets["glue_database"].unique().sort().to_list())
    rows = _diff_rows(cfg, desired, state, assets, quarantined, audit, dry_run)
    audit.extend(left_behind_events(assets, state))

    # Stale managed tables: only on request, only after a complete read, within the safety share.
    refused = False
    if cfg.sync.delete_stale if delete_stale is None else delete_stale:
        stale, refused = _stale_rows(cfg, frames, assets, state, audit)
        if stale.height:
            rows = pl.concat([rows, stale], how="diagonal_relaxed")

    plan = _plan(cfg, rows, frames.edges, audit, _unread_upstreams(frames))
    if dry_run:
        plan = plan.with_columns(error_code=pl.lit(None, dtype=pl.Utf8))
    else:
        planned.append(plan)
        plan = _write(plan, assets, state, target, progress)
    plan = plan.sort("batch", "priority", "space", "name")

    audit.add_frame(_asset_events(plan, dry_run))
    problems = plan.filter(
        pl.col("action").is_in(["quarantine", "conflict", "skip"])
        | pl.col("status").is_in(["failed", "skipped"])
    ).height
    status = "partial" if (problems or frames.incomplete or refused) else "succeeded"
    summary = _summary(
        run_id,
        status,
        dry_run,
        started,
        plan,
        target.calls.as_dict(),
        dict(sorted(target.calls.retries.items())),
    )
    audit.add(
        Event(
            "run_finished",
            "info" if status == "succeeded" else "warning",
            f"run {run_id} {status} in {time.perf_counter() - t0:.1f}s: "
            + (", ".join(f"{v} {k}" for k, v in summary["counts"].items() if v) or "no assets"),
            details=summary["counts"],
        )
    )
    # The TableInput texts (desired and current) are the catalog itself, not the plan: leaving them out keeps
    # the result and a 100,000-table plan file small (and the file's write under a second).
    plan = plan.drop("table_input", "current_definition", strict=False)
    audit_dir = audit.write(cfg.audit.dir, summary, _plan_file(plan))
    return SyncResult(
        summary=summary,
        events=audit.frame(),
        assets=assets.drop(ASSET_KEY, strict=False),
        columns=columns.drop(ASSET_KEY, strict=False),
        plan=plan,
        edges=frames.edges,
        column_lineage=frames.column_lineage,
        audit_dir=audit_dir,
    )


_INVENTED = r"^x(_[0-9a-f]{8})?$"  # what the naming rule makes of a name with no letter or digit a-z, 0-9


def naming_events(assets: pl.DataFrame, columns: pl.DataFrame) -> list[Event]:
    """Warnings for Glue names that tell little of their source: names with no letter or digit a-z/0-9 left
    (Chinese, Cyrillic, symbols: they become `x` plus a hash), and spaces moved to a suffixed database because
    another space took the database name."""
    events: list[Event] = []

    def invented(frame: pl.DataFrame, glue: str, source: str) -> pl.DataFrame:
        candidates = frame.filter(pl.col(glue).str.starts_with("x") & pl.col(glue).str.contains(_INVENTED))
        kept = pl.col(source).str.normalize("NFKD").str.replace_all(r"\p{Mn}", "").str.contains("[A-Za-z0-9]")
        return candidates.filter(~kept)

    tables = invented(assets, "glue_table", "name")
    cols = invented(columns, "glue_column", "column")
    if tables.height or cols.height:
        examples = [
            f"{s}.{n} -> {t}" for s, n, t in tables.select("space", "name", "glue_table").head(3).rows()
        ]
        examples += [
            f"{s}.{n}.{c} -> {g}"
            for s, n, c, g in cols.select("space", "name", "column", "glue_column").head(3).rows()
        ]
        events.append(
            Event(
                "names_invented",
                "warning",
                f"{tables.height} table and {cols.height} column name(s) keep no letter or digit of their source "
                f"name, since Glue names allow only a-z, 0-9 and _ (e.g. {'; '.join(examples)}).",
                details={"tables": tables.height, "columns": cols.height, "examples": examples},
                hint="Give them readable names with a naming rule (a template or a replace).",
            )
        )
    databases = assets.select("space", "glue_database").unique().sort("space")
    # The collision suffix of a database is the hash of its space (`resolve_names`): only that one counts.
    suffixed = databases["glue_database"].str.ends_with(pl.lit(collision_suffix(databases["space"])))
    plain = databases["glue_database"].str.replace(r"_[0-9a-f]{8}$", "")
    moved = databases.filter(suffixed & plain.is_in(databases["glue_database"].implode()))
    for space, database in moved.rows():
        events.append(
            Event(
                "database_renamed",
                "warning",
                f"space {space} maps to the same database as another space; its tables go to {database}.",
                space=space,
                details={"database": database},
                hint="Give each space its own database name with a naming rule on target: database.",
            )
        )
    return events


def _warning_with_examples(
    event: str, found: pl.DataFrame, example: pl.Expr, message: str, count_key: str, hint: str
) -> list[Event]:
    """One warning for the rows `found`: `message` (with `{n}`, their number) and the first three `example`s."""
    if found.is_empty():
        return []
    examples = found.head(3).select(example).to_series().to_list()
    return [
        Event(
            event,
            "warning",
            message.format(n=found.height) + f" (e.g. {'; '.join(examples)}).",
            details={count_key: found.height, "examples": examples},
            hint=hint,
        )
    ]


def left_behind_events(assets: pl.DataFrame, state: TargetState) -> list[Event]:
    """A warning for managed tables whose asset now maps to another table (a naming rule changed): nothing
    writes them any more, and `--delete-stale` keeps them, since their asset still exists."""
    moved = (
        state.tables.filter(pl.col("managed"))
        .join(
            assets.select(
                "space", "name", pl.col("glue_table").alias("_now"), pl.col("glue_database").alias("_db")
            ),
            on=["space", "name"],
            how="inner",
        )
        .filter((pl.col("glue_table") != pl.col("_now")) | (pl.col("glue_database") != pl.col("_db")))
        .sort("glue_database", "glue_table")
    )
    return _warning_with_examples(
        "tables_left_behind",
        moved,
        pl.format(
            "{}.{} (now {}.{} -> {}.{})", "glue_database", "glue_table", "space", "name", "_db", "_now"
        ),
        "{n} managed table(s) belong to assets that now map to another table and are no longer written",
        "tables",
        "Delete them in the target once the new tables are written; metasync leaves them as they are.",
    )


def decimal_events(columns: pl.DataFrame) -> list[Event]:
    """A warning for decimals wider than Glue's 38 digits: they are written with fewer fractional digits (all
    of them gone when the integer part alone has 38 or more), which changes what the column can hold."""
    wide = columns.filter(
        (pl.col("source_type") == "cds.Decimal")
        & (pl.col("precision") > 38)
        & pl.col("glue_type").str.starts_with("decimal(")
    )
    return _warning_with_examples(
        "decimal_narrowed",
        wide,
        pl.format(
            "{}.{}.{} decimal({},{}) -> {}", "space", "name", "column", "precision", "scale", "glue_type"
        ),
        "{n} decimal column(s) have more than the 38 digits Glue holds; fractional digits were dropped to fit",
        "columns",
        "Check the precision in Datasphere, or map them to double or string with a type rule.",
    )


def _desired_tables(assets: pl.DataFrame, columns: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Quarantine rows breaking Glue's limits; the TableInput and content hash of every other asset."""
    ok_assets, ok_columns, quarantined = validate_frames(assets, columns)
    desired = table_inputs(with_text_hash(ok_assets, ok_columns), ok_columns).drop(ASSET_KEY, strict=False)
    return desired.with_columns(content_hashes(desired["table_input"])), quarantined


def _diff_rows(
    cfg: Config,
    desired: pl.DataFrame,
    state: TargetState,
    assets: pl.DataFrame,
    quarantined: pl.DataFrame,
    audit: AuditLog,
    dry_run: bool,
) -> pl.DataFrame:
    """One row per asset with its action against the target: diff, conflicts (resolved by strategy),
    duplicates held, quarantined rows."""
    edited = schema_edited_in_target(desired, state)
    diffed = diff_tables(desired, state, edited)
    conflicts = detect_conflicts(desired, state, cfg.conflicts, edited)
    audit.add_frame(conflict_events(conflicts, dry_run))
    diffed = keep_target_parameters(resolve_conflicts(diffed, conflicts))
    duplicate = pl.col("conflict_files").list.len() > 0
    diffed = diffed.with_columns(
        action=pl.when(duplicate).then(pl.lit("conflict")).otherwise(pl.col("action")),
        reason=pl.when(duplicate)
        .then(pl.format("defined differently in {}", pl.col("conflict_files").list.join(", ")))
        .otherwise(pl.col("reason")),
        conflict_type=pl.when(duplicate).then(pl.lit("duplicate")).otherwise(pl.col("conflict_type")),
    )
    none = pl.lit(None, dtype=pl.Utf8)
    return pl.concat(
        [
            diffed.select(
                "space",
                "name",
                "kind",
                "glue_database",
                "glue_table",
                "action",
                "reason",
                "hash",
                "table_input",
                "version_id",
                "current_definition",
                "conflict_type",
                none.alias("hint"),
            ),
            assets.join(quarantined, on=["space", "name"], how="inner").select(
                "space",
                "name",
                "kind",
                "glue_database",
                "glue_table",
                pl.lit("quarantine").alias("action"),
                "reason",
                none.alias("hash"),
                none.alias("table_input"),
                none.alias("version_id"),
                none.alias("current_definition"),
                none.alias("conflict_type"),
                "hint",
            ),
        ]
    )


def _plan(
    cfg: Config, rows: pl.DataFrame, edges: pl.DataFrame, audit: AuditLog, unread: pl.DataFrame
) -> pl.DataFrame:
    """Batches and priority from the lineage; assets held for an `unread` upstream (`_unread_upstreams`) are
    skipped, and so are the data-flow dependents of every held asset."""
    held = _held(rows)
    planned = plan_batches(
        rows.filter(pl.col("action") != "delete").select("space", "name", "kind"),
        edges,
        priority=cfg.sync.priority,
        blocked=pl.concat([held, unread.join(held, on=["space", "name"], how="anti")]),
    )
    audit.extend(cycle_events(planned))
    plan = rows.join(
        planned.drop("kind"), on=["space", "name"], how="left", maintain_order="left"
    ).with_columns(
        batch=pl.col("batch").fill_null(0).cast(pl.Int32),
        priority=pl.col("priority").fill_null(0).cast(pl.Int32),
        upstreams=pl.col("upstreams").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))),
    )
    skip = pl.col("held_reason").is_not_null() & pl.col("action").is_in(["create", "update", "unchanged"])
    plan = plan.with_columns(
        action=pl.when(skip).then(pl.lit("skip")).otherwise(pl.col("action")),
        reason=pl.when(skip).then(pl.col("held_reason")).otherwise(pl.col("reason")),
    ).drop("held_reason")
    plan = plan.with_columns(
        status=pl.when(pl.col("action").is_in(["quarantine", "conflict", "skip"]))
        .then(pl.lit("held"))
        .when(pl.col("action") == "unchanged")
        .then(pl.lit("ok"))
        .otherwise(pl.lit("planned")),
        hint=pl.when(pl.col("hint").is_not_null())
        .then(pl.col("hint"))
        .when(pl.col("action") == "conflict")
        .then(
            pl.col("conflict_type")
            .str.split(",")
            .list.first()
            .replace_strict(CONFLICT_HINTS, default=pl.lit("Resolve the conflict, then sync again."))
        )
        .when((pl.col("action") == "skip") & pl.col("reason").str.starts_with(UNREAD_PREFIX))
        .then(
            pl.lit(
                "Fix what the run could not read (its file_skipped or space_skipped events), then sync again."
            )
        )
        .when((pl.col("action") == "skip") & pl.col("reason").str.starts_with(CYCLE_PREFIX))
        .then(pl.lit(CYCLE_HINT))
        .when(
            (pl.col("action") == "skip")
            & pl.col("conflict_type").is_not_null()
            & ~pl.col("reason").str.starts_with("upstream ")
        )
        .then(
            pl.format(
                "The target's table is kept (strategy target_wins); set conflicts.{} to another strategy to "
                "write the source.",
                pl.col("conflict_type").str.split(",").list.first(),
            )
        )
        .when(pl.col("action") == "skip")
        .then(pl.lit(UPSTREAM_HINT)),
    )
    return _with_column_changes(plan)


def _with_column_changes(plan: pl.DataFrame) -> pl.DataFrame:
    """Column-level differences for updates (the few rows that change), as JSON text."""
    updates = plan.filter(pl.col("action") == "update")
    changes = [
        column_changes(new, old)
        for new, old in zip(
            updates["table_input"].to_list(), updates["current_definition"].to_list(), strict=True
        )
    ]
    frame = updates.select("space", "name").with_columns(
        column_changes=pl.Series(
            [orjson.dumps(c).decode() if any(c.values()) else None for c in changes], dtype=pl.Utf8
        )
    )
    return plan.join(frame, on=["space", "name"], how="left", maintain_order="left")


def _stale_rows(
    cfg: Config, frames: SourceFrames, assets: pl.DataFrame, state: TargetState, audit: AuditLog
) -> tuple[pl.DataFrame, bool]:
    """Delete rows for stale managed tables, or none with an error event when deleting is not safe. Tables of
    assets that still exist are kept: quarantined, held, or left out by the scope rules."""
    if frames.incomplete:
        audit.add(
            Event(
                "delete_refused",
                "error",
                "stale tables were not deleted because the source was not read completely.",
                hint="Fix the source errors above; deletion runs only after a complete read.",
            )
        )
        return pl.DataFrame(), True
    spaces = frames.assets["space"].unique().to_list()
    stale = stale_tables(assets, state, spaces, frames.assets)
    managed = state.tables.filter(pl.col("managed")).height
    if stale.height and managed and stale.height / managed > cfg.sync.max_delete_fraction:
        audit.add(
            Event(
                "delete_refused",
                "error",
                f"refusing to delete {stale.height} of {managed} managed tables "
                f"({stale.height / managed:.0%} > sync.max_delete_fraction {cfg.sync.max_delete_fraction:.0%}).",
                details={
                    "stale": stale.height,
                    "managed": managed,
                    "max_fraction": cfg.sync.max_delete_fraction,
                },
                hint="Check that the source is complete; raise sync.max_delete_fraction if the deletion is intended.",
            )
        )
        return pl.DataFrame(), True
    return (
        stale.with_columns(
            kind=pl.lit("table"),
            action=pl.lit("delete"),
            reason=pl.lit("the source asset no longer exists"),
        ),
        False,
    )


FINALIZE_SLICE = 5_000  # TableInputs made final at once before writing


def _write(
    plan: pl.DataFrame,
    assets: pl.DataFrame,
    state: TargetState,
    target: Target,
    progress: ProgressFactory | None,
) -> pl.DataFrame:
    todo = plan.filter(pl.col("action").is_in(list(WRITE_ACTIONS)))
    if todo.is_empty():
        return plan.with_columns(error_code=pl.lit(None, dtype=pl.Utf8))
    writes = todo.filter(pl.col("action") != "delete")
    # Finalised a slice at a time: the texts of a whole catalog as Python objects (656 MB at 100,000 tables)
    # would stay with the process after they are freed.
    final = [
        pl.Series(
            [
                finalize_table_input(text, digest)
                for text, digest in zip(part["table_input"].to_list(), part["hash"].to_list(), strict=True)
            ],
            dtype=pl.Utf8,
        )
        for part in writes.select("table_input", "hash").iter_slices(FINALIZE_SLICE)
    ]
    writes = writes.with_columns(table_input=pl.concat(final) if final else pl.lit(None, dtype=pl.Utf8))
    tables = pl.concat(
        [
            writes,
            todo.filter(pl.col("action") == "delete").with_columns(table_input=pl.lit(None, dtype=pl.Utf8)),
        ]
    ).sort("batch", "priority", maintain_order=True)
    needed = writes.select("glue_database").unique()
    spaces = assets.select("glue_database", "space").unique("glue_database", keep="first")
    new_dbs = (
        needed.join(state.databases.select("glue_database"), on="glue_database", how="anti")
        .join(spaces, on="glue_database", how="left")
        .sort("glue_database")
    )
    new_dbs = new_dbs.with_columns(
        database_input=pl.Series(
            [database_input(d, s) for d, s in zip(new_dbs["glue_database"], new_dbs["space"], strict=True)],
            dtype=pl.Utf8,
        )
    )
    callback = progress(tables.height) if progress is not None else None
    with gc_resumed():
        outcomes = target.write(WriteRequest(databases=new_dbs, tables=tables), callback)
    return _with_outcomes(plan, outcomes)


def _with_outcomes(plan: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """The plan with each write's outcome (OUTCOME_COLUMNS rows from the target): its status, message, hint and
    error code; rows without an outcome keep theirs."""
    outcome_cols = outcomes.select(
        "space",
        "name",
        "action",
        pl.col("status").alias("_status"),
        "error_code",
        pl.col("message").alias("_message"),
        pl.col("hint").alias("_hint"),
    )
    merged = plan.join(outcome_cols, on=["space", "name", "action"], how="left", maintain_order="left")
    # An asset left out because its upstream was not written is a skip, as one held before the write is.
    skipped = pl.col("_status") == "skipped"
    return merged.with_columns(
        action=pl.when(skipped).then(pl.lit("skip")).otherwise(pl.col("action")),
        status=pl.coalesce("_status", "status"),
        reason=pl.coalesce("_message", "reason"),
        hint=pl.coalesce("_hint", pl.when(skipped).then(pl.lit(UPSTREAM_HINT)), "hint"),
    ).drop("_status", "_message", "_hint")
