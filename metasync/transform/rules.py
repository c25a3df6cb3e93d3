"""Transformation rules: small pydantic models that compile to Polars expressions.

A rule is data. `compile_rules` turns the configured list into one function that applies every rule, in order,
in one lazy pass over the assets and columns frames.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Annotated, Literal, Union

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from metasync.errors import RuleError


class Scope(BaseModel):
    """Which assets a rule applies to; every given condition must hold."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[str] | None = None
    spaces: list[str] | None = None
    name_glob: str | None = None
    name_regex: str | None = None
    modeling_patterns: list[str] | None = None

    def expr(self) -> pl.Expr:
        cond = pl.lit(True)
        if self.kinds is not None:
            cond &= pl.col("kind").is_in(self.kinds)
        if self.spaces is not None:
            cond &= pl.col("space").is_in(self.spaces)
        if self.name_glob is not None:
            cond &= pl.col("name").str.contains(fnmatch.translate(self.name_glob))
        if self.name_regex is not None:
            cond &= pl.col("name").str.contains(self.name_regex)
        if self.modeling_patterns is not None:
            cond &= pl.col("modeling_pattern").is_in(self.modeling_patterns)
        return cond


class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    where: Scope = Field(default_factory=Scope)


class ScopeRule(_RuleBase):
    """Keep only the assets that match `include` (if given) and do not match `exclude`."""

    kind: Literal["scope"]
    include: Scope | None = None
    exclude: Scope | None = None


class TypeRule(_RuleBase):
    """Override the Glue type of columns whose source type matches."""

    kind: Literal["type"]
    source_type: str
    glue_type: str = Field(description="may use {length}, {precision}, {scale}")
    max_length: int | None = None
    min_length: int | None = None


Rule = Annotated[Union[ScopeRule, TypeRule], Field(discriminator="kind")]
RULE_KINDS = ("scope", "type")

FramePair = tuple[pl.LazyFrame, pl.LazyFrame]


def _check_regex(pattern: str | None, index: int, kind: str) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RuleError(f"bad regular expression {pattern!r}: {exc}", index=index, kind=kind) from exc


def _apply_scope(rule: ScopeRule) -> Callable[[FramePair], FramePair]:
    keep = rule.where.expr()
    if rule.include is not None:
        keep &= rule.include.expr()
    if rule.exclude is not None:
        keep &= ~rule.exclude.expr()

    def apply(frames: FramePair) -> FramePair:
        assets, columns = frames
        assets = assets.filter(keep)
        columns = columns.join(assets.select("space", "name"), on=["space", "name"], how="semi")
        return assets, columns

    return apply


def _apply_type(rule: TypeRule) -> Callable[[FramePair], FramePair]:
    cond = pl.col("source_type") == rule.source_type
    if rule.max_length is not None:
        cond &= pl.col("length") <= rule.max_length
    if rule.min_length is not None:
        cond &= pl.col("length") >= rule.min_length
    pieces = re.split(r"(\{length\}|\{precision\}|\{scale\})", rule.glue_type)
    parts: list[pl.Expr] = [
        pl.col(p[1:-1]).cast(pl.Utf8) if p.startswith("{") else pl.lit(p) for p in pieces if p
    ]
    new_type = pl.concat_str(parts) if parts else pl.lit(rule.glue_type)

    def apply(frames: FramePair) -> FramePair:
        assets, columns = frames
        in_scope = assets.filter(rule.where.expr()).select("space", "name").with_columns(_rule_hit=pl.lit(True))
        columns = (
            columns.join(in_scope, on=["space", "name"], how="left")
            .with_columns(
                glue_type=pl.when(cond & pl.col("_rule_hit").fill_null(False))
                .then(new_type)
                .otherwise(pl.col("glue_type"))
            )
            .drop("_rule_hit")
        )
        return assets, columns

    return apply


def compile_rules(rules: list[Rule]) -> Callable[[FramePair], FramePair]:
    """Compile the rules in order into one function over lazy (assets, columns) frames."""
    steps: list[Callable[[FramePair], FramePair]] = []
    for index, rule in enumerate(rules):
        _check_regex(rule.where.name_regex, index, rule.kind)
        if isinstance(rule, ScopeRule):
            for scope in (rule.include, rule.exclude):
                if scope is not None:
                    _check_regex(scope.name_regex, index, rule.kind)
            steps.append(_apply_scope(rule))
        elif isinstance(rule, TypeRule):
            steps.append(_apply_type(rule))

    def apply_all(frames: FramePair) -> FramePair:
        for step in steps:
            frames = step(frames)
        return frames

    return apply_all
