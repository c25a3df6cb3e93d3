"""Conflicts between the desired tables and what the target holds, and how each is resolved.

Four conflict types, found with joins over whole frames:

* `naming`: two source assets meet in one Glue name (the second got the collision suffix), or the table is
  managed by metasync for another asset;
* `ownership`: the table exists without `metasync:managed`;
* `schema_drift`: the update would remove columns or change a type incompatibly (narrower decimal or varchar,
  smaller integer, string to number, ...);
* `edited_in_target`: the table's description or a column comment was changed in the target since metasync
  last wrote it. metasync stores a fingerprint of the text it meant to write (`metasync:text_hash`); a target
  whose text no longer matches its stored fingerprint was edited there; `edited_text` reads from the same
  fingerprint which texts were (the description, the comments of which columns).

Strategies, chosen per conflict type and, optionally, per asset kind: `source_wins` (write the source),
`target_wins` (leave the table as it is, the asset is skipped), `merge` (source columns and types; keep the
target-only Parameters and, when edited there, the target's description and comments) and `manual` (hold the
asset as a conflict; its data-flow dependents are skipped). An unmanaged table is never overwritten:
`ownership` accepts only `manual` and `target_wins`.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any, Literal

import orjson
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from metasync.diff import current_tables, schema_edited_in_target
from metasync.models import ASSET_KINDS
from metasync.targets.base import TargetState
from metasync.transform.mapping import collision_suffix, parameter_keys, table_keys
from metasync.transform.rules import lookup, parameter_update

Strategy = Literal["source_wins", "target_wins", "merge", "manual"]
CONFLICT_TYPES = ("naming", "ownership", "schema_drift", "edited_in_target")
TEXT_HASH_KEY = "metasync:text_hash"
WRITTEN_KEYS = "metasync:keys"  # the Parameters keys (other than metasync:*) the rules set, comma-separated
_ALLOWED: dict[str, tuple[str, ...]] = {
    "naming": ("source_wins", "target_wins", "manual"),
    "ownership": ("target_wins", "manual"),
    "schema_drift": ("source_wins", "target_wins", "merge", "manual"),
    "edited_in_target": ("source_wins", "target_wins", "merge", "manual"),
}
_HINTS = {
    "naming": "Give one of the assets another name with a naming rule, or set conflicts.naming.",
    "ownership": "Rename the asset with a naming rule, or remove or adopt the foreign table yourself.",
    "schema_drift": "Check the dropped or narrowed columns (details: removed, narrowed); set "
    "conflicts.schema_drift to source_wins to apply them, or add the columns back in Datasphere.",
    "edited_in_target": "Copy the edited text into Datasphere, or set conflicts.edited_in_target to "
    "source_wins to overwrite it or merge to keep it.",
}
# The hint of an asset held for a conflict, by its (first) conflict type; `duplicate` is the reader's.
CONFLICT_HINTS = _HINTS | {
    "duplicate": "Keep one definition of the object in the source files, or make the copies identical.",
}
# When several conflicts hit one asset, the most cautious outcome applies.
_OUTCOME_ORDER = ("hold", "skip", "merge", "write")
_OUTCOME = {"manual": "hold", "target_wins": "skip", "merge": "merge", "source_wins": "write"}


class ConflictStrategies(BaseModel):
    """How each conflict type is resolved; `by_kind` overrides them for asset kinds."""

    model_config = ConfigDict(extra="forbid")

    naming: Strategy = "source_wins"
    ownership: Strategy = "manual"
    schema_drift: Strategy = "source_wins"
    edited_in_target: Strategy = "merge"
    by_kind: dict[str, dict[Literal["naming", "ownership", "schema_drift", "edited_in_target"], Strategy]] = (
        Field(default_factory=dict)
    )

    @model_validator(mode="after")
    def _allowed(self) -> ConflictStrategies:
        unknown = sorted(set(self.by_kind) - set(ASSET_KINDS))
        if unknown:
            raise ValueError(
                f"conflicts.by_kind: unknown asset kind(s) {unknown}; known: {list(ASSET_KINDS)}"
            )
        choices = [(f"conflicts.{t}", t, getattr(self, t)) for t in CONFLICT_TYPES] + [
            (f"conflicts.by_kind.{kind}.{t}", t, s)
            for kind, items in self.by_kind.items()
            for t, s in items.items()
        ]
        for key, conflict_type, strategy in choices:
            if strategy not in _ALLOWED[conflict_type]:
                raise ValueError(
                    f"{key}: '{strategy}' is not allowed for {conflict_type} conflicts "
                    f"(allowed: {', '.join(_ALLOWED[conflict_type])})"
                    + (
                        "; metasync never overwrites a table it does not manage"
                        if conflict_type == "ownership"
                        else ""
                    )
                )
        return self

    def expr(self, conflict_type: str) -> pl.Expr:
        """The strategy for `conflict_type` of each row, by its `kind`."""
        default = pl.lit(getattr(self, conflict_type))
        overrides = {
            kind: items[conflict_type] for kind, items in self.by_kind.items() if conflict_type in items
        }
        if not overrides:
            return default
        return pl.col("kind").replace_strict(overrides, default=default, return_dtype=pl.Utf8)


CONFLICT_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "space": pl.Utf8,
    "name": pl.Utf8,
    "kind": pl.Utf8,
    "glue_database": pl.Utf8,
    "glue_table": pl.Utf8,
    "conflict_type": pl.Utf8,
    "strategy": pl.Utf8,
    "message": pl.Utf8,
    "details": pl.Utf8,
}


# ------------------------------------------------------------------ text fingerprint
_COLUMNS_DTYPE = pl.List(pl.Struct({"Name": pl.Utf8, "Comment": pl.Utf8}))
# The fingerprinted text: the description, then the `name=comment` entries of the columns, joined by these.
_TEXT_SEP, _ENTRY_SEP = "\x1f", "\x1e"


def _text_digest(data: bytes) -> str:
    """The fingerprint of a text (BLAKE2b, 16 hex digits)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _text_of(table_json: pl.Expr, *, commented_only: bool = True) -> pl.Expr:
    """The description and column comments of a TableInput (JSON text) as one string: the text `_texts`
    fingerprints. Columns without a comment are left out, so a column added in the target is not an edit of
    text; `commented_only=False` gives the earlier form, which listed every column (fingerprints stored by
    earlier versions are checked against both)."""
    description = table_json.str.json_path_match("$.Description").fill_null("")
    comment = pl.element().struct.field("Comment").fill_null("")
    entry = pl.concat_str([pl.element().struct.field("Name"), comment], separator="=")
    comments = (
        table_json.str.json_path_match("$.StorageDescriptor.Columns")
        .str.json_decode(_COLUMNS_DTYPE)
        .list.eval(entry.filter(comment != "") if commented_only else entry)
        .list.join(_ENTRY_SEP)
        .fill_null("")
    )
    return pl.concat_str([description, comments], separator=_TEXT_SEP)


def text_digests(texts: pl.Series) -> pl.Series:
    """A stable digest of each text (BLAKE2b, 16 hex digits); Polars' own hash may change between versions."""
    digests = [
        _text_digest(data) for data in texts.fill_null("").cast(pl.Binary).to_list()
    ]  # row-python-ok: one C digest call per table, no Polars expression is version-stable
    return pl.Series(digests, dtype=pl.Utf8)


def _texts(assets: pl.DataFrame, columns: pl.DataFrame) -> pl.Series:
    """For each asset, the same text `_text_of` reads back from the table written for it."""
    keys = table_keys(assets, columns)
    # Grouped in frame order with a sort by ordinal inside each group, like the TableInput's columns: sorting
    # millions of columns by their string keys first costs far more.
    comments = (
        columns.lazy()
        .filter(pl.col("comment").fill_null("") != "")
        .select(
            *keys,
            "ordinal",
            _comment=pl.concat_str([pl.col("glue_column"), pl.col("comment")], separator="="),
        )
        .group_by(keys, maintain_order=True)
        .agg(_comments=pl.col("_comment").sort_by("ordinal").str.join(_ENTRY_SEP))
    )
    return (
        lookup(assets.lazy().select(*keys, "glue_description"), comments, keys, ["_comments"])
        .select(
            pl.concat_str(
                [pl.col("glue_description").fill_null(""), pl.col("_comments").fill_null("")],
                separator=_TEXT_SEP,
            )
        )
        .collect()
        .to_series()
    )


def with_text_hash(assets: pl.DataFrame, columns: pl.DataFrame) -> pl.DataFrame:
    """Mapped assets with `metasync:text_hash` (the fingerprint of their description and column comments) and
    `metasync:keys` (the other Parameters keys the rules set, so a later update can tell them from keys added
    in the target) in their table Parameters; `columns` are their mapped columns (`glue_column`, `comment`,
    `ordinal`)."""
    if assets.is_empty():
        return assets
    own = [k for k in parameter_keys(assets) if not k.startswith("metasync:")]
    written = (
        pl.concat_list(
            [pl.when(pl.col("parameters").struct.field(k).is_not_null()).then(pl.lit(k)) for k in own]
        )
        .list.drop_nulls()
        .list.join(",")
        if own
        else pl.lit(None, dtype=pl.Utf8)
    )
    update = parameter_update({TEXT_HASH_KEY: pl.col("_text_hash"), WRITTEN_KEYS: pl.col("_written")})
    with_digest = assets.with_columns(_text_hash=text_digests(_texts(assets, columns)), _written=written)
    return update(with_digest.lazy(), pl.lit(True)).drop("_text_hash", "_written").collect()


# ------------------------------------------------------------------ type compatibility
_TYPE_PARTS = r"^([a-z]+)(?:\((\d+)(?:,\s*(\d+))?\))?"
_INT_RANK = {"tinyint": 1, "smallint": 2, "int": 3, "integer": 3, "bigint": 4}
_INT_DIGITS = {"tinyint": 3, "smallint": 5, "int": 10, "integer": 10, "bigint": 19}


def compatible_type_change(old: pl.Expr, new: pl.Expr) -> pl.Expr:
    """True where a column typed `old` can be read as `new` without losing values."""
    ob, o1, o2 = (old.str.extract(_TYPE_PARTS, i) for i in (1, 2, 3))
    nb, n1, n2 = (new.str.extract(_TYPE_PARTS, i) for i in (1, 2, 3))
    o1, o2, n1, n2 = (e.cast(pl.Int64) for e in (o1, o2, n1, n2))
    old_int = ob.replace_strict(_INT_RANK, default=None, return_dtype=pl.Int64)
    new_int = nb.replace_strict(_INT_RANK, default=None, return_dtype=pl.Int64)
    old_digits = ob.replace_strict(_INT_DIGITS, default=None, return_dtype=pl.Int64)
    text = ("varchar", "char")
    return (
        (old == new)
        | (nb == "string")
        | (ob.is_in(text) & nb.is_in(text) & (n1 >= o1))
        | (old_int.is_not_null() & (new_int >= old_int))
        | (old_int.is_not_null() & (nb == "decimal") & ((n1 - n2) >= old_digits))
        | (old_int.is_not_null() & nb.is_in(["double", "float"]))
        | ((ob == "decimal") & (nb == "decimal") & (n2 >= o2) & ((n1 - n2) >= (o1 - o2)))
        | ((ob == "decimal") & (nb == "double"))
        | ((ob == "float") & (nb == "double"))
        | ((ob == "date") & (nb == "timestamp"))
    ).fill_null(False)


def _columns_long(frame: pl.DataFrame, json_column: str) -> pl.DataFrame:
    """(glue_database, glue_table, column, type) for every column of the TableInputs in `json_column`."""
    dtype = pl.List(pl.Struct({"Name": pl.Utf8, "Type": pl.Utf8}))
    return (
        frame.select(
            "glue_database",
            "glue_table",
            pl.col(json_column)
            .str.json_path_match("$.StorageDescriptor.Columns")
            .str.json_decode(dtype)
            .alias("c"),
        )
        .explode("c")
        .unnest("c")
        .filter(pl.col("Name").is_not_null())
        .rename({"Name": "column", "Type": "type"})
    )


def _schema_drift(pairs: pl.DataFrame) -> pl.DataFrame:
    """Per updated table: columns removed and columns whose type changed incompatibly (lists of text)."""
    keys = ["glue_database", "glue_table"]
    new = _columns_long(pairs, "table_input")
    old = _columns_long(pairs, "current_definition")
    joined = old.join(new, on=[*keys, "column"], how="left", suffix="_new")
    removed = joined.filter(pl.col("type_new").is_null()).group_by(keys).agg(removed=pl.col("column"))
    narrowed = (
        joined.filter(
            pl.col("type_new").is_not_null() & ~compatible_type_change(pl.col("type"), pl.col("type_new"))
        )
        .group_by(keys)
        .agg(narrowed=pl.format("{}: {} -> {}", "column", "type", "type_new"))
    )
    return removed.join(narrowed, on=keys, how="full", coalesce=True)


# ------------------------------------------------------------------ detection
def _suffixed_collisions(desired: pl.DataFrame) -> pl.DataFrame:
    """Assets whose table name got the collision suffix because another asset holds the plain name."""
    plain = desired.select(
        "space",
        "name",
        "glue_database",
        "glue_table",
        pl.col("glue_table").str.extract(r"^(.+)_[0-9a-f]{8}$", 1).alias("_plain"),
    ).filter(pl.col("_plain").is_not_null())
    holders = desired.select(
        "glue_database",
        pl.col("glue_table").alias("_plain"),
        pl.col("space").alias("_o_space"),
        pl.col("name").alias("_o_name"),
    )
    candidates = plain.join(holders, on=["glue_database", "_plain"], how="inner")
    # A name may end in `_` and eight hex digits by itself: only the suffix of its own digest counts.
    own_suffix = collision_suffix(candidates["name"]) if candidates.height else pl.Series([], dtype=pl.Utf8)
    return (
        candidates.with_columns(_suffix=own_suffix)
        .filter(pl.col("glue_table").str.ends_with(pl.col("_suffix")))
        .select("space", "name", "_plain", "_o_space", "_o_name")
    )


def detect_conflicts(
    desired: pl.DataFrame,
    state: TargetState,
    strategies: ConflictStrategies,
    schema_edited: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per conflict of a desired table with the target (or with another desired table).

    `desired` needs `space`, `name`, `kind`, `glue_database`, `glue_table`, `hash` and `table_input`.
    Returns CONFLICT_COLUMNS: what differs (message, details as JSON text) and the strategy that applies.
    Tables about to be written are checked for drift and edited text: those whose source changed, and those
    whose columns were edited in the target (`schema_edited`, see `diff.schema_edited_in_target`).
    """
    if schema_edited is None:
        schema_edited = schema_edited_in_target(desired, state)
    keys = ["glue_database", "glue_table"]
    rows = desired.select("space", "name", "kind", *keys, "hash", "table_input").join(
        current_tables(state).drop("version_id"), on=keys, how="inner"
    )
    found: list[pl.DataFrame] = []

    ownership = rows.filter(~pl.col("_managed"))
    found.append(
        ownership.select(
            "space",
            "name",
            "kind",
            *keys,
            conflict_type=pl.lit("ownership"),
            message=pl.format("table {}.{} exists and is not managed by metasync", *keys),
            details=pl.struct(*keys, managed=pl.lit(False)).struct.json_encode(),
        )
    )
    managed = rows.filter(pl.col("_managed"))
    other_owner = (pl.col("_owner_space") != pl.col("space")) | (pl.col("_owner_name") != pl.col("name"))
    collisions = _suffixed_collisions(desired).join(
        desired.select("space", "name", "kind", *keys), on=["space", "name"]
    )
    # A table is taken over only from an asset that left it (gone from the source, or renamed by a rule). An
    # owner that lost the name to a collision (it now gets the suffix) still wants it: the collision is held
    # whatever the strategy, or the table would silently change what it describes.
    lost = (
        collisions.select(pl.concat_str("space", "name", "glue_database", "_plain", separator="\x1f"))
        .to_series()
        .implode()
    )
    owner_present = pl.concat_str(
        "_owner_space", "_owner_name", "glue_database", "glue_table", separator="\x1f"
    ).is_in(lost)
    found.append(
        managed.filter(other_owner.fill_null(True)).select(
            "space",
            "name",
            "kind",
            *keys,
            conflict_type=pl.lit("naming"),
            message=pl.format(
                "table {}.{} is managed by metasync for another asset ({}.{})",
                *keys,
                "_owner_space",
                "_owner_name",
            )
            + pl.when(owner_present)
            .then(pl.lit(", which lost the name to a collision and keeps it: held"))
            .otherwise(pl.lit("")),
            details=pl.struct(
                *keys, owner_space="_owner_space", owner_name="_owner_name"
            ).struct.json_encode(),
            _held=owner_present.fill_null(False),
        )
    )
    # The asset that owns the plain name in the target and lost it to the collision order is held too.
    owned_before = current_tables(state).select(
        "glue_database",
        pl.col("glue_table").alias("_plain"),
        pl.concat_str("_owner_space", "_owner_name", separator="\x1f").alias("_owner"),
    )
    collisions = collisions.join(owned_before, on=["glue_database", "_plain"], how="left").with_columns(
        _held=(pl.col("_owner") == pl.concat_str("space", "name", separator="\x1f")).fill_null(False)
    )
    found.append(
        collisions.select(
            "space",
            "name",
            "kind",
            *keys,
            conflict_type=pl.lit("naming"),
            message=pl.format(
                "{}.{} and {}.{} both map to the Glue table {}.{}; this one was given {}",
                "space",
                "name",
                "_o_space",
                "_o_name",
                "glue_database",
                "_plain",
                "glue_table",
            )
            + pl.when("_held").then(pl.lit(" but owns that table now: held")).otherwise(pl.lit("")),
            details=pl.struct(
                *keys, plain_name="_plain", other_space="_o_space", other_name="_o_name"
            ).struct.json_encode(),
            _held="_held",
        )
    )

    edited = pl.col("_edited").fill_null(False)
    changed = managed.join(
        schema_edited.with_columns(_edited=pl.lit(True)), on=keys, how="left", maintain_order="left"
    ).filter(~other_owner.fill_null(True) & ((pl.col("_hash") != pl.col("hash")) | edited))
    if changed.height:
        found.append(_drift_conflicts(changed))
        found.append(_edited_conflicts(changed))
    # Diagonal: only the naming frames carry `_held`; the others get it as null (not held).
    conflicts = (
        pl.concat([f for f in found if f.height], how="diagonal_relaxed")
        if any(f.height for f in found)
        else None
    )
    if conflicts is None:
        return pl.DataFrame(schema=CONFLICT_COLUMNS)
    strategy = pl.lit(None, dtype=pl.Utf8)
    for conflict_type in CONFLICT_TYPES:
        strategy = (
            pl.when(pl.col("conflict_type") == conflict_type)
            .then(strategies.expr(conflict_type))
            .otherwise(strategy)
        )
    if "_held" in conflicts.columns:
        strategy = pl.when(pl.col("_held").fill_null(False)).then(pl.lit("manual")).otherwise(strategy)
    return conflicts.with_columns(strategy=strategy).select(list(CONFLICT_COLUMNS))


def _drift_conflicts(changed: pl.DataFrame) -> pl.DataFrame:
    keys = ["glue_database", "glue_table"]
    drift = _schema_drift(changed.select(*keys, "table_input", "current_definition"))
    if drift.is_empty():
        return pl.DataFrame()
    empty = pl.lit([], dtype=pl.List(pl.Utf8))
    drift = drift.with_columns(
        removed=pl.col("removed").fill_null(empty), narrowed=pl.col("narrowed").fill_null(empty)
    )
    parts = [
        pl.when(pl.col("removed").list.len() > 0).then(
            pl.format("columns removed: {}", pl.col("removed").list.join(", "))
        ),
        pl.when(pl.col("narrowed").list.len() > 0).then(
            pl.format("types changed incompatibly: {}", pl.col("narrowed").list.join(", "))
        ),
    ]
    return changed.join(drift, on=keys).select(
        "space",
        "name",
        "kind",
        *keys,
        conflict_type=pl.lit("schema_drift"),
        message=pl.concat_str(
            [pl.format("table {}.{}: ", *keys), pl.concat_str(parts, separator="; ", ignore_nulls=True)]
        ),
        details=pl.struct(*keys, "removed", "narrowed").struct.json_encode(),
    )


def _edited_conflicts(changed: pl.DataFrame) -> pl.DataFrame:
    keys = ["glue_database", "glue_table"]
    stored = pl.col("current_definition").str.json_path_match(f"$.Parameters['{TEXT_HASH_KEY}']")
    current = pl.col("current_definition")
    changed = changed.with_columns(
        _stored=stored,
        _target_text=text_digests(changed.select(_text_of(current)).to_series()),
        _target_text_before=text_digests(changed.select(_text_of(current, commented_only=False)).to_series()),
    )
    edited = changed.filter(
        pl.col("_stored").is_not_null()
        & (pl.col("_stored") != pl.col("_target_text"))
        & (pl.col("_stored") != pl.col("_target_text_before"))
    )
    if edited.is_empty():
        return pl.DataFrame()
    rows = edited.select(
        *keys, "table_input", "current_definition", "_stored"
    ).rows()  # row-python-ok: only the few tables whose text was edited in the target
    reports = [_edited_report(*row) for row in rows]  # row-python-ok: the few tables edited in the target
    wanted, messages, details = zip(*reports, strict=True)
    return (
        edited.with_columns(
            message=pl.Series(list(messages), dtype=pl.Utf8),
            details=pl.Series(list(details), dtype=pl.Utf8),
            _wanted=pl.Series(list(wanted), dtype=pl.Boolean),
        )
        .filter("_wanted")
        .select(
            "space",
            "name",
            "kind",
            *keys,
            pl.lit("edited_in_target").alias("conflict_type"),
            "message",
            "details",
        )
    )


def _edited_report(database: str, table: str, new: str, old: str, stored: str) -> tuple[bool, str, str]:
    """For one table whose text no longer matches its fingerprint: whether that is edited text (not only the
    comment of a column dropped in the target, a schema edit), the conflict message and its details."""
    items = edited_text(new, old, stored)
    wanted = items is None or bool(items["description"] or items["columns"])
    count = 2 if items is None else int(items["description"]) + len(items["columns"])
    message = (
        f"{_edited_what(items)} of {database}.{table} {'was' if count == 1 else 'were'} edited in the target"
    )
    details = {
        "glue_database": database,
        "glue_table": table,
        "target_description": orjson.loads(old).get("Description"),
        "source_description": orjson.loads(new).get("Description"),
        "edited": items,
    }
    return wanted, message, orjson.dumps(details).decode()


# ------------------------------------------------------------------ resolution
def resolve_conflicts(diffed: pl.DataFrame, conflicts: pl.DataFrame) -> pl.DataFrame:
    """The diffed plan rows with each conflict's strategy applied to `action`, `reason` and `table_input`.

    hold → `conflict` (dependents are skipped by the planner); skip → `skip`; write → the diff's own action
    (an update where the table is managed for another asset); merge → `update` with a merged TableInput.
    """
    if conflicts.is_empty():
        return diffed
    order = {o: i for i, o in enumerate(_OUTCOME_ORDER)}
    per_asset = (
        conflicts.with_columns(
            _rank=pl.col("strategy")
            .replace_strict(_OUTCOME, return_dtype=pl.Utf8)
            .replace_strict(order, return_dtype=pl.Int32)
        )
        .group_by("space", "name")
        .agg(
            _outcome=pl.col("_rank").min(),
            _reason=pl.concat_str([pl.col("conflict_type"), pl.lit(": "), pl.col("message")]).str.join("; "),
            _types=pl.col("conflict_type"),
            _edited=pl.col("details")
            .filter(pl.col("conflict_type") == "edited_in_target")
            .first()
            .str.json_path_match("$.edited"),
        )
        .with_columns(
            _outcome=pl.col("_outcome").replace_strict(dict(enumerate(_OUTCOME_ORDER)), return_dtype=pl.Utf8)
        )
    )
    rows = diffed.join(per_asset, on=["space", "name"], how="left", maintain_order="left")
    outcome = pl.col("_outcome")
    write_action = pl.when(pl.col("action") == "conflict").then(pl.lit("update")).otherwise(pl.col("action"))
    rows = rows.with_columns(
        action=pl.when(outcome == "hold")
        .then(pl.lit("conflict"))
        .when(outcome == "skip")
        .then(pl.lit("skip"))
        .when(outcome.is_in(["write", "merge"]))
        .then(write_action)
        .otherwise(pl.col("action")),
        reason=pl.when(outcome.is_not_null()).then(pl.col("_reason")).otherwise(pl.col("reason")),
        conflict_type=pl.when(outcome.is_not_null())
        .then(pl.col("_types").list.join(","))
        .otherwise(pl.col("conflict_type")),
    )
    merge = outcome == "merge"
    if rows.select(merge.any()).item():
        edited = pl.col("_types").list.contains("edited_in_target")
        targets = rows.filter(merge.fill_null(False))
        merged = [
            merge_table_input(
                new, old, keep_text, orjson.loads(items) if items else None
            )  # row-python-ok: merges the JSON of the few tables in conflict
            for new, old, keep_text, items in zip(
                targets["table_input"].to_list(),
                targets["current_definition"].to_list(),
                targets.select(edited)[:, 0].to_list(),
                targets["_edited"].to_list(),
                strict=True,
            )
        ]
        patch = targets.select("space", "name").with_columns(_merged=pl.Series(merged, dtype=pl.Utf8))
        rows = (
            rows.join(patch, on=["space", "name"], how="left", maintain_order="left")
            .with_columns(table_input=pl.coalesce("_merged", "table_input"))
            .drop("_merged")
        )
    return rows.drop("_outcome", "_reason", "_types", "_edited")


_JSON_KEY = r'"((?:[^"\\]|\\.)*)"\s*:'  # a key of a JSON object of strings
_PAIR_KEY = r'"key":"((?:[^"\\]|\\.)*)"'  # a key of the canonical {"key", "value"} Parameters list


def _keys(text: pl.Expr, pattern: str) -> pl.Expr:
    """The keys (group 1 of `pattern`) found in JSON `text`, as a list."""
    return text.str.extract_all(pattern).list.eval(pl.element().str.extract(pattern, 1))


def keep_target_parameters(rows: pl.DataFrame) -> pl.DataFrame:
    """Updates that keep the Parameters someone added to the table in the target (keys metasync does not set,
    such as `classification` or an owner): Glue replaces a table's whole definition on update. Only the rows
    whose target has such keys are merged (`merge_table_input`); finding them is done on the JSON texts."""
    if rows.is_empty():
        return rows
    target_keys = _keys(pl.col("current_definition").str.json_path_match("$.Parameters"), _JSON_KEY)
    source_keys = _keys(pl.col("table_input").str.json_path_match("$.Parameters"), _PAIR_KEY)
    own = target_keys.list.eval(pl.element().filter(~pl.element().str.starts_with("metasync:")))
    # Keys metasync wrote before (listed in the target's metasync:keys) are the rules' to drop, not the target's.
    wrote = (
        pl.col("current_definition")
        .str.json_path_match(f"$.Parameters['{WRITTEN_KEYS}']")
        .fill_null("")
        .str.split(",")
    )
    extra = own.list.set_difference(source_keys).list.set_difference(wrote).list.len() > 0
    # Filtered in two steps: the key lists are built only for updates, not for every table created.
    updates = rows.select("action", "table_input", "current_definition").with_row_index("_row")
    updates = updates.filter((pl.col("action") == "update") & pl.col("current_definition").is_not_null())
    found = updates.filter(extra.fill_null(False))
    if found.is_empty():
        return rows
    merged = [
        merge_table_input(
            new, old, keep_text=False
        )  # row-python-ok: only tables with Parameters of their own
        for new, old in zip(
            found["table_input"].to_list(), found["current_definition"].to_list(), strict=True
        )
    ]
    return rows.with_columns(rows["table_input"].scatter(found["_row"], pl.Series(merged, dtype=pl.Utf8)))


EditedText = dict[str, Any]  # {"description": bool, "columns": [names]}
# What trying readings of the earlier text may cost per table and fingerprint form, as bytes hashed plus a
# fixed charge per reading for the Python work around it: about 25 ms at most per form, at least every reading
# with up to 2 of 50 changed texts on the other side for a table of 70 commented columns.
_READING_BUDGET = 10_000_000
_READING_CHARGE = 4_000
_ABSENT = None  # a column that was not in the table metasync wrote


def _entry(name: str, comment: str | None, every_column: bool) -> str | None:
    """A column's part of the fingerprinted text (`_text_of`): `name=comment`; a column that was not there
    has none, and neither has one without a comment, except in the earlier every-column form."""
    if comment is None or (not comment and not every_column):
        return None
    return f"{name}={comment}"


def _columns_of(table: dict[str, Any]) -> list[tuple[str, str]]:
    columns = (table.get("StorageDescriptor") or {}).get("Columns") or []
    return [(str(c.get("Name")), str(c.get("Comment") or "")) for c in columns if isinstance(c, dict)]


def _earlier_columns(
    source_columns: dict[str, str], target_columns: list[tuple[str, str]]
) -> list[tuple[str, list[str | None]]]:
    """The columns the earlier table may have had, in order, each with what its comment may have been (the
    target's first): the target's columns, with the source's others after their neighbour, as not there
    (first) or dropped in the target."""
    order: list[tuple[str, list[str | None]]] = []
    for name, comment in target_columns:
        new = source_columns.get(name)
        order.append((name, [comment] if new is None or new == comment else [comment, new]))
    position = {name: index for index, (name, _) in enumerate(order)}
    after = -1
    for name, comment in source_columns.items():
        if name in position:
            after = position[name]
            continue
        order.insert(after + 1, (name, [_ABSENT, comment]))
        position = {n: i for i, (n, _) in enumerate(order)}
        after = position[name]
    return order


def edited_text(source_json: str, target_json: str, stored: str) -> EditedText | None:
    """Which texts of a table were edited in the target: its description and the columns whose comment was.

    Only a fingerprint of the text metasync wrote is stored (`metasync:text_hash`). Each text that differs
    between the target and the source now was, before, either the target's (the source changed it since) or
    the source's (the target changed it); a column the target lacks was either never written or dropped
    there. The reading whose fingerprint is the stored one tells which. Readings with fewer texts taken from
    the source's side come first: an edit in the target touches a few texts, however many the source changed.
    None when no reading matches (both sides changed one text) or the hashing budget is spent: then every text
    of the target counts as edited.
    """
    source, target = orjson.loads(source_json), orjson.loads(target_json)
    target_columns = _columns_of(target)
    in_target = {name for name, _ in target_columns}
    order = _earlier_columns(dict(_columns_of(source)), target_columns)
    description_now = str(target.get("Description") or "")
    description_new = str(source.get("Description") or "")
    # The current form, then the earlier every-column one (tables written by earlier versions), each with a
    # budget of its own: a table fingerprinted in one form never matches a reading of the other.
    for every_column in (False, True):
        budget = [_READING_BUDGET]
        # Each choice as the fingerprinted parts it may give, those giving the same part merged (a column
        # without a comment that was or was not there gives no part in the current form).
        descriptions: list[str | None] = [description_now]
        if description_new != description_now:
            descriptions.append(description_new)
        choices = [descriptions]
        for name, candidates in order:
            choices.append(list(dict.fromkeys(_entry(name, comment, every_column) for comment in candidates)))
        found = _search(choices, stored, budget)
        if found is not None:
            columns = [
                name for (name, _), flip in zip(order, found[1:], strict=True) if flip and name in in_target
            ]
            return {"description": found[0], "columns": columns}
    return None


def _search(choices: list[list[str | None]], stored: str, budget: list[int]) -> list[bool] | None:
    """The reading (which choices take their second part) whose text has the fingerprint `stored`, trying
    readings with fewer second parts first, within `budget` bytes hashed (spent from it); None if none."""
    first = [candidates[0] for candidates in choices]
    open_choices = [index for index, candidates in enumerate(choices) if len(candidates) > 1]
    for count in range(len(open_choices) + 1):
        for flipped in itertools.combinations(open_choices, count):
            picked = list(first)
            for index in flipped:
                picked[index] = choices[index][1]
            description, *entries = picked
            text = f"{description}{_TEXT_SEP}" + _ENTRY_SEP.join(
                entry for entry in entries if entry is not None
            )
            data = text.encode()
            budget[0] -= len(data) + _READING_CHARGE
            if _text_digest(data) == stored:
                reading = [False] * len(choices)
                for index in flipped:
                    reading[index] = True
                return reading
            if budget[0] <= 0:
                return None
    return None


def _edited_what(items: EditedText | None) -> str:
    """'the description and the comment of note', for a conflict message."""
    if items is None:
        return "the description or column comments"
    parts = ["the description"] if items["description"] else []
    columns = items["columns"]
    if columns:
        parts.append(f"the comment{'s' if len(columns) > 1 else ''} of {', '.join(columns)}")
    return " and ".join(parts)


def merge_table_input(
    source_json: str, target_json: str | None, keep_text: bool, edited: EditedText | None = None
) -> str:
    """The source TableInput (canonical JSON) with the target's own Parameters kept and, if `keep_text`,
    the target's edited text: its description and the comments of columns still present, those named in
    `edited` (`edited_text`) or, without it, all of them."""
    source = orjson.loads(source_json)
    target = orjson.loads(target_json) if target_json else {}
    source_keys = {p["key"] for p in source.get("Parameters") or []}
    target_params = target.get("Parameters") or {}
    written_before = set(str(target_params.get(WRITTEN_KEYS) or "").split(","))
    extra = [
        {"key": k, "value": v}
        for k, v in sorted(target_params.items())
        if k not in source_keys and k not in written_before and not k.startswith("metasync:")
    ]
    source["Parameters"] = list(source.get("Parameters") or []) + extra
    if keep_text:
        if edited is None or edited["description"]:
            source["Description"] = target.get("Description")
        comments = {
            c["Name"]: c.get("Comment") for c in (target.get("StorageDescriptor") or {}).get("Columns") or []
        }
        kept = set(comments) if edited is None else set(edited["columns"])
        for column in (source.get("StorageDescriptor") or {}).get("Columns") or []:
            if column["Name"] in comments and column["Name"] in kept:
                column["Comment"] = comments[column["Name"]]
    # `metasync:text_hash` stays the fingerprint of the source text, so next run still sees (and keeps) the edit.
    return orjson.dumps(source).decode()


def _event_hint(outcome: pl.Expr) -> pl.Expr:
    """What to do about a conflict, by what its strategy did: a held one is to be resolved; one resolved by
    strategy says what was done and which setting changes it."""
    conflict_type = pl.col("conflict_type")
    held = conflict_type.replace_strict(_HINTS, return_dtype=pl.Utf8)
    others = conflict_type.replace_strict(
        {
            "naming": "source_wins",
            "schema_drift": "source_wins or merge",
            "edited_in_target": "source_wins or merge",
        },
        default="source_wins",
        return_dtype=pl.Utf8,
    )
    return (
        pl.when((outcome == "hold") | (conflict_type == "ownership"))
        .then(held)
        .when(outcome == "skip")
        .then(
            pl.format(
                "The target's table was kept (target_wins); set conflicts.{} to {} to write the source.",
                conflict_type,
                others,
            )
        )
        .when((outcome == "merge") & (conflict_type == "edited_in_target"))
        .then(
            pl.lit(
                "The text edited in the target was kept and the rest written from the source (merge); copy the "
                "text into Datasphere to make it the source's, or set conflicts.edited_in_target to source_wins."
            )
        )
        .otherwise(
            pl.format(
                "The source's {} was written ({}); set conflicts.{} to manual to review such changes first.",
                pl.when(conflict_type == "naming").then(pl.lit("name")).otherwise(pl.lit("columns")),
                pl.col("strategy"),
                conflict_type,
            )
        )
    )


def conflict_events(conflicts: pl.DataFrame, dry_run: bool = False) -> pl.DataFrame:
    """One audit event per conflict: what differed, the strategy applied and how to resolve it. In a dry run
    a conflict the strategy writes through is `planned`, not yet overwritten or merged."""
    outcome = pl.col("strategy").replace_strict(_OUTCOME, return_dtype=pl.Utf8)
    done = (
        {"merge": "merged", "write": "overwritten"}
        if not dry_run
        else {"merge": "planned", "write": "planned"}
    )
    return conflicts.select(
        event=pl.lit("conflict"),
        severity=pl.when(outcome == "hold").then(pl.lit("error")).otherwise(pl.lit("warning")),
        space="space",
        name="name",
        action=pl.lit("conflict"),
        status=outcome.replace_strict({"hold": "held", "skip": "skipped", **done}),
        message=pl.format("{} conflict, strategy {}: {}", "conflict_type", "strategy", "message"),
        details=pl.concat_str(
            pl.lit('{"conflict_type":"'),
            "conflict_type",
            pl.lit('","strategy":"'),
            "strategy",
            pl.lit('","conflict":'),
            "details",
            pl.lit("}"),
        ),
        hint=_event_hint(outcome),
    )
