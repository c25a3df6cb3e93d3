"""Configuration: pydantic models for the YAML file, `${VAR}` interpolation, environments, relative paths."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from metasync.errors import ConfigError
from metasync.models import ASSET_KINDS, space_name_problem
from metasync.transform.conflicts import ConflictStrategies
from metasync.transform.rules import Rule


def _only_known(value: list[str], known: tuple[str, ...], what: str) -> list[str]:
    """`value` when every entry is one of `known`; else the error naming the unknown ones."""
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {list(known)}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _given_path(value: Any) -> Any:
    """An empty path (often an environment variable that is not set) would mean the configuration's own
    folder: reading it as the source, or writing the catalog or the audit into it. It is refused instead."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("the path is empty (is an environment variable in it unset?)")
    return value


GivenPath = Annotated[Path, BeforeValidator(_given_path)]


# ---------------------------------------------------------------- sources
class CsnSourceConfig(_Strict):
    """CSN exports on disk: one file, or a folder searched recursively for *.json and *.csn."""

    kind: Literal["csn"] = "csn"
    path: GivenPath
    space: str | None = Field(default=None, description="space of files directly under `path`")
    skip_invalid: bool = Field(default=False, description="skip unreadable files instead of stopping")
    language: str = Field(default="en", description="language used to resolve {i18n>KEY} labels")
    read_in_subprocess: Literal["auto"] | bool = Field(
        default="auto",
        description="read in child processes (one per core, by space folder), which return the parsing memory "
        "to the system when they end; `auto`: when the files hold more than 64 MiB",
    )

    @field_validator("space")
    @classmethod
    def _space_has_no_dot(cls, value: str | None) -> str | None:
        problem = space_name_problem(value) if value is not None else None
        if problem:
            raise ValueError(f"{value!r} {problem}")
        return value


DATASPHERE_OBJECT_TYPES = (
    "localtables",
    "remotetables",
    "views",
    "analyticmodels",
    "dataflows",
    "replicationflows",
    "transformationflows",
)


DATASPHERE_CREDENTIAL_VARIABLES = {
    "client_id": "METASYNC_DATASPHERE_CLIENT_ID",
    "client_secret": "METASYNC_DATASPHERE_CLIENT_SECRET",
}


class DatasphereSourceConfig(_Strict):
    """A Datasphere tenant read over its REST APIs with an OAuth2 client (technical user)."""

    kind: Literal["datasphere"]
    url: str
    token_url: str | None = None
    client_id: str = Field(default=None, validate_default=True)  # type: ignore[assignment]
    client_secret: SecretStr = Field(default=None, validate_default=True)  # type: ignore[assignment]
    spaces: list[str] | None = None
    object_types: list[str] = Field(default_factory=lambda: list(DATASPHERE_OBJECT_TYPES))
    timeout: float = Field(default=30.0, gt=0)
    max_workers: int = Field(default=4, ge=1, le=64)
    max_retries: int = Field(default=5, ge=0, le=20)
    retry_backoff: float = Field(
        default=0.5, ge=0, description="seconds before the first retry when no Retry-After is sent; doubles"
    )
    max_backoff: float = Field(default=60.0, ge=0, description="longest wait before one retry, in seconds")
    incremental: bool = True
    language: str = "en"

    @field_validator("client_id", "client_secret", mode="before")
    @classmethod
    def _credential_from_environment(cls, value: Any, info: ValidationInfo) -> Any:
        """A credential left out of the file comes from `METASYNC_DATASPHERE_CLIENT_ID` / `_CLIENT_SECRET`."""
        if value is not None:
            return value
        variable = DATASPHERE_CREDENTIAL_VARIABLES[str(info.field_name)]
        if variable in os.environ:
            return os.environ[variable]
        raise ValueError(f"not set; write {info.field_name}: ${{VAR}} or export {variable}")

    @field_validator("object_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        return _only_known(value, DATASPHERE_OBJECT_TYPES, "object type(s)")


SourceConfig = Annotated[CsnSourceConfig | DatasphereSourceConfig, Field(discriminator="kind")]


# ---------------------------------------------------------------- targets
class LocalTargetConfig(_Strict):
    """A folder holding a Glue-shaped catalog: the embedded default, no AWS needed."""

    kind: Literal["local"] = "local"
    path: GivenPath = Path("catalog")


_REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")  # the shape botocore accepts


class GlueTargetConfig(_Strict):
    """The AWS Glue Data Catalog, through boto3."""

    kind: Literal["glue"]
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    catalog_id: str | None = None
    role_arn: str | None = None
    max_requests_per_second: float = Field(default=10.0, gt=0)
    max_workers: int = Field(default=4, ge=1, le=64)
    max_retry_seconds: float = Field(default=120.0, gt=0)
    location_template: str | None = Field(
        default=None, description="StorageDescriptor Location, with {space}, {name}, {database}, {table}"
    )
    storage_format: Literal["parquet", "orc", "csv", "json", "avro"] = "parquet"
    skip_archive: bool = True

    @field_validator(
        "region", "profile", "endpoint_url", "catalog_id", "role_arn", "location_template", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """`${VAR:-}` left empty means "not set"."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_a_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{value!r} is not an http:// or https:// URL (e.g. http://localhost:5000)")
        return value

    @field_validator("region")
    @classmethod
    def _region_is_a_name(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (e.g. eu-central-1)")
        return value

    @field_validator("location_template")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(space="s", name="n", database="d", table="t")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"unknown placeholder or bad braces ({exc}); use {{space}}, {{name}}, {{database}}, {{table}}"
                ) from exc
        return value


TargetConfig = Annotated[LocalTargetConfig | GlueTargetConfig, Field(discriminator="kind")]


# ---------------------------------------------------------------- the rest
class AuditConfig(_Strict):
    dir: GivenPath = Path("metasync-audit")


class SyncOptions(_Strict):
    """How the sync behaves beyond source and target."""

    delete_stale: bool = False
    max_delete_fraction: float = Field(default=0.2, ge=0, le=1)
    priority: list[str] = Field(
        default_factory=lambda: [
            "analytic_model",
            "table",
            "remote_table",
            "fact",
            "dimension",
            "hierarchy",
            "text",
            "view",
        ],
        description="asset kinds from highest to lowest priority; unlisted kinds come last",
    )

    @field_validator("priority")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        twice = sorted({kind for kind in value if value.count(kind) > 1})
        if twice:
            raise ValueError(f"asset kind(s) {twice} listed more than once; each kind has one place")
        return _only_known(value, ASSET_KINDS, "asset kind(s)")


class Config(_Strict):
    source: SourceConfig
    target: TargetConfig = Field(default_factory=LocalTargetConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    sync: SyncOptions = Field(default_factory=SyncOptions)
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    conflicts: ConflictStrategies = Field(default_factory=ConflictStrategies)

    # Not part of the file: where it came from and which environment was chosen.
    env: str | None = Field(default=None, exclude=True)
    origin: str = Field(default="<dict>", exclude=True)
    # What `load_config` built it from, before any environment: another environment starts from there again.
    _base: dict[str, Any] | None = PrivateAttr(default=None)
    _folder: Path | None = PrivateAttr(default=None)

    @field_validator("target", mode="before")
    @classmethod
    def _target_kind_defaults_to_local(cls, value: Any) -> Any:
        """`kind` may be left out of `target` (or `target:` left empty): the README documents `local` as default."""
        if value is None:
            value = {}
        if isinstance(value, dict) and value.get("kind") is None:
            return {**value, "kind": "local"}
        return value

    @field_validator("audit", "sync", "conflicts", "environments", "rules", mode="before")
    @classmethod
    def _empty_section_is_left_out(cls, value: Any, info: ValidationInfo) -> Any:
        """A section written with nothing after its colon (YAML null) reads as left out, as its writer meant;
        so does an environment written as `dev:` alone."""
        if value is None:
            return [] if info.field_name == "rules" else {}
        if info.field_name == "environments" and isinstance(value, dict):
            return {name: {} if overlay is None else overlay for name, overlay in value.items()}
        return value


# ---------------------------------------------------------------- loading
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _interpolate(value: Any, origin: str, key: str = "") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a nested structure."""
    if isinstance(value, dict):
        return {k: _interpolate(v, origin, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, origin, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{origin}: key '{key}' uses ${{{name}}} but the environment variable {name} is not set.",
            hint=f"Export {name} or write ${{{name}:-default}}.",
        )

    return _VAR.sub(substitute, value)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Merge `overlay` into a copy of `base`: dicts merge key by key, everything else is replaced.

    A dict whose `kind` differs from the base's (e.g. a target switching from `local` to `glue`) replaces it
    whole, since the keys of one kind mean nothing to another. A section left empty in the overlay (`target:`
    with nothing after it) is as if left out: the base's stays.
    """
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if value is None and isinstance(current, dict):
            continue
        if (
            isinstance(value, dict)
            and isinstance(current, dict)
            and value.get("kind", current.get("kind")) == current.get("kind")
        ):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _kinds(union: Any) -> tuple[str, ...]:
    """The `kind` values of a tagged union's models (`Annotated[A | B, ...]`), in their order."""
    return tuple(get_args(model.model_fields["kind"].annotation)[0] for model in get_args(get_args(union)[0]))


# By the first key of an error's path: the kinds to name when `kind` is left out.
_KINDS = {"source": _kinds(SourceConfig), "target": _kinds(TargetConfig), "rules": _kinds(Rule)}
# Values never quoted in a message: the input of a secret that failed validation is still the secret.
_SECRET_KEYS = frozenset(
    name for name, field in DatasphereSourceConfig.model_fields.items() if field.annotation is SecretStr
)


@dataclass(frozen=True)
class _Place:
    """Where a pydantic error points in the configuration as written: the key path (e.g. `rules[0].target`),
    the key path of the plain union (e.g. `'auto' | bool`) whose member failed, if any, and whether the error is
    about a mapping's key itself rather than its value; `default_kind`: the `kind` used as it was left out."""

    key: str
    union: str | None = None
    of_key: bool = False
    default_kind: str | None = None


def _join(parts: list[Any]) -> str:
    return ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in parts).replace(".[", "[")


def _place(loc: tuple[Any, ...], data: Any, missing: bool) -> _Place:
    """Follow a pydantic error location through the input: steps that are no key or index of it are union
    labels (a tagged model's `kind`, or a plain member's type such as `literal['auto']`) and are left out."""
    parts: list[Any] = []
    union, of_key, after_tag, default_kind = None, False, False, None
    for i, step in enumerate(loc):
        if step == "[key]":
            of_key = True
        elif isinstance(data, dict) and not after_tag and _is_tag(step, data, missing and i == len(loc) - 1):
            after_tag = True
            default_kind = None if "kind" in data else step
            continue
        elif isinstance(data, dict) or (isinstance(step, int) and isinstance(data, list)):
            parts.append(step)
            data = _child(data, step)
        elif union is None:
            union = _join(parts)
        after_tag = False
    return _Place(_join(parts), union, of_key, default_kind)


def _is_tag(step: Any, data: dict[Any, Any], missing_key: bool) -> bool:
    """Whether `step` names the tagged model validated for `data`: its `kind`, given or (not being a key of
    `data`, nor the key found missing) defaulted."""
    return step == data.get("kind") or (step not in data and not missing_key)


def _child(data: Any, step: Any) -> Any:
    if isinstance(data, dict):
        return data.get(step)
    return data[step] if -len(data) <= step < len(data) else None


# What a value of an error type would have been, as alternatives.
_TYPE_WORDS = {
    "bool_type": ["true", "false"],
    "bool_parsing": ["true", "false"],
    "int_type": ["a whole number"],
    "int_parsing": ["a whole number"],
    "int_from_float": ["a whole number"],
    "float_type": ["a number"],
    "float_parsing": ["a number"],
    "string_type": ["text"],
    "list_type": ["a list"],
    "dict_type": ["a mapping"],
    "model_type": ["a mapping"],
    "model_attributes_type": ["a mapping"],
    "path_type": ["a path (text)"],
}
_BOUND_WORDS = {
    "greater_than": "a number above {gt}",
    "greater_than_equal": "a number of at least {ge}",
    "less_than": "a number below {lt}",
    "less_than_equal": "a number of at most {le}",
    "too_short": "{min_length} or more entries",
    "too_long": "{max_length} or fewer entries",
}


def _alternatives(err: ErrorDetails) -> list[str] | None:
    """What the value should have been, as alternatives; None when a validator of ours said it in its words."""
    ctx = err.get("ctx", {})
    if err["type"] == "literal_error":
        return re.split(r", | or ", str(ctx["expected"]))
    if err["type"] in _BOUND_WORDS:
        return [_BOUND_WORDS[err["type"]].format(**{name: _shown(bound) for name, bound in ctx.items()})]
    return _TYPE_WORDS.get(err["type"])


def _one_of(alternatives: list[str]) -> str:
    if len(alternatives) == 1:
        return alternatives[0]
    return ", ".join(alternatives[:-1]) + " or " + alternatives[-1]


def _shown(value: Any) -> str:
    """A value as the YAML file spells it, shortened; a mapping or list by its shape only."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return ("a" if value else "an empty") + (" mapping" if isinstance(value, dict) else " list")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(place: _Place, alternatives: list[str], value: Any) -> str:
    """`key 'K': expected A or B, got V`, or, for a mapping left empty, the advice to fill it."""
    if value is None and alternatives == ["a mapping"]:
        return f"key '{place.key}' is empty; give a mapping"
    got = "" if place.key.rsplit(".", 1)[-1] in _SECRET_KEYS else f", got {_shown(value)}"
    return f"key '{place.key}': expected {_one_of(alternatives)}{got}"


def _problem(err: ErrorDetails, place: _Place) -> str:
    """One error as a sentence about the file: its key path, what was expected, what was found."""
    key, kind, ctx = place.key, err["type"], err.get("ctx", {})
    if kind == "extra_forbidden":
        kind_left_out = f" (no kind given: '{place.default_kind}' is used)" if place.default_kind else ""
        return f"unknown key '{key}'{kind_left_out}"
    if kind == "missing":
        return f"missing key '{key}'"
    if kind == "union_tag_not_found" and isinstance(err["input"], dict):
        kinds = _KINDS.get(re.split(r"[.\[]", key)[0], ())
        return f"key '{key}.kind' is missing" + (f" (one of: {', '.join(kinds)})" if kinds else "")
    if kind == "union_tag_invalid":
        kinds_text = str(ctx.get("expected_tags")).replace("'", "")
        return f"key '{key}': unknown kind {ctx.get('tag')!r} (one of: {kinds_text})"
    alternatives = _alternatives(err)
    if alternatives is not None and place.of_key:
        return f"unknown key '{key}' (one of: {', '.join(word.strip(chr(39)) for word in alternatives)})"
    if alternatives is not None:
        return _expected(place, alternatives, err["input"])
    # A validator's own sentence, without pydantic's label; one that names its key already stands alone.
    message = re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])
    return message if message.startswith((f"{key}.", f"{key}:")) else f"key '{key}': {message}"


def _union_problems(members: list[tuple[ErrorDetails, _Place]]) -> list[str]:
    """The errors of a value that fits no member of a plain union, collapsed into one sentence when the value
    failed each member's type; when it had a member's shape, only that member's errors tell what is wrong."""
    deeper = [(err, place) for err, place in members if place.key != place.union]
    checked = [(err, place) for err, place in members if _alternatives(err) is None]
    if deeper or checked:
        return [_problem(err, place) for err, place in deeper or checked]
    alternatives = [choice for err, _ in members for choice in _alternatives(err) or []]
    first_err, first_place = members[0]
    return [_expected(first_place, list(dict.fromkeys(alternatives)), first_err["input"])]


def _problems(errors: list[ErrorDetails], data: Any) -> Iterator[str]:
    """One sentence per error, in pydantic's order, the errors of one plain union taken together."""
    groups: dict[Any, list[tuple[ErrorDetails, _Place]]] = {}
    for number, err in enumerate(errors):
        place = _place(tuple(err["loc"]), data, missing=err["type"] == "missing")
        groups.setdefault(number if place.union is None else place.union, []).append((err, place))
    for members in groups.values():
        if members[0][1].union is None:
            yield _problem(*members[0])
        else:
            yield from _union_problems(members)


def _format_validation_error(exc: ValidationError, origin: str, data: Any) -> str:
    """All of pydantic's errors as sentences about `data`, the configuration as written (none of pydantic's
    vocabulary: no model names, union members or input types)."""
    problems = list(dict.fromkeys(_problems(exc.errors(), data)))
    return f"{origin}: " + "; ".join(problems) + "."


class _YamlLoader(yaml.SafeLoader):
    """YAML with booleans spelled true/false only (as YAML 1.2): `on`, `off`, `yes` and `no` stay words, so
    keys such as a rule's `on:` read as written. Pydantic still takes those words as booleans where one is due."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_unique_keys(node, [], set())
        return super().construct_document(node)


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping of the file gives one key twice; PyYAML alone would keep the last silently."""

    def __init__(self, key: str, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


def _check_unique_keys(node: yaml.Node, path: list[Any], seen: set[int]) -> None:
    """Raise `_DuplicateKeyError` for the first key given twice in one mapping under `node` (merge keys `<<`
    may repeat what they merge: there the file's own key wins, as YAML means)."""
    if id(node) in seen:  # an alias: its anchor was checked already (and may contain itself)
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_unique_keys(item, [*path, index], seen)
    elif isinstance(node, yaml.MappingNode):
        marks: dict[Any, yaml.Mark] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key_node.tag != "tag:yaml.org,2002:merge" and key in marks:
                raise _DuplicateKeyError(_join([*path, key]), marks[key], key_node.start_mark)
            marks.setdefault(key, key_node.start_mark)
            _check_unique_keys(value_node, [*path, key], seen)


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"configuration file {path} is not UTF-8 text (the byte at offset {exc.start} cannot be decoded).",
            hint="Save the file as UTF-8.",
        ) from exc
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist.") from exc
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc.strerror}.") from exc
    try:
        data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 (a SafeLoader)
    except _DuplicateKeyError as exc:
        first, again = (f"line {m.line + 1}, column {m.column + 1}" for m in (exc.first, exc.again))
        raise ConfigError(
            f"configuration file {path}: key '{exc.key}' appears twice: at {first} and at {again}.",
            hint="Keep one of them.",
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"configuration file {path} is not valid YAML{where}.") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping at the top level.")
    return data


def _resolve_paths(config: Config, base_dir: Path) -> None:
    def resolve(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base_dir / p)

    if isinstance(config.source, CsnSourceConfig):
        config.source.path = resolve(config.source.path)
    if isinstance(config.target, LocalTargetConfig):
        config.target.path = resolve(config.target.path)
    config.audit.dir = resolve(config.audit.dir)


def load_config(
    config: str | os.PathLike[str] | dict[str, Any] | Config,
    *,
    env: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Build a validated `Config` from a YAML path, a dict or a `Config`, applying `env` if given.

    Relative paths resolve against the YAML file's folder (for a dict: `base_dir`, else the working folder).
    """
    if isinstance(config, Config):
        if env is None or env == config.env:
            return config
        if config._base is not None and config._folder is not None:  # loaded: its environment is undone
            raw, origin, folder = config._base, config.origin, Path(base_dir or config._folder)
        else:
            raw = config.model_dump(mode="python", exclude_none=False)
            raw["environments"] = config.environments
            origin, folder = config.origin, Path(base_dir or Path.cwd())
    elif isinstance(config, dict):
        raw, origin, folder = config, "<config dict>", Path(base_dir or Path.cwd())
    elif not isinstance(config, (str, os.PathLike)):
        raise ConfigError(
            f"a configuration is a YAML file's path, a dict or a Config, not {type(config).__name__}."
        )
    else:
        path = Path(config)
        raw, origin, folder = _read_yaml(path), str(path), path.resolve().parent

    base = copy.deepcopy(raw)  # kept as written (and apart from the caller's dict): interpolated once, afresh
    # The environments not chosen stay as written: a variable only `prod` uses need not be set for `dev`.
    environments_as_written = raw.get("environments") if isinstance(raw, dict) else None
    raw = _interpolate({k: v for k, v in raw.items() if k != "environments"}, origin)
    if environments_as_written is not None:
        raw["environments"] = environments_as_written
    if env is not None:
        environments = raw.get("environments") or {}
        if not isinstance(environments, dict) or env not in environments:
            known = ", ".join(sorted(environments)) if isinstance(environments, dict) else ""
            raise ConfigError(
                f"{origin}: environment '{env}' is not defined under 'environments'"
                + (f" (defined: {known})." if known else " (none are defined).")
            )
        overlay = environments[env] or {}
        if not isinstance(overlay, dict):
            raise ConfigError(f"{origin}: key 'environments.{env}' must be a mapping.")
        overlay = _interpolate(overlay, origin, f"environments.{env}")
        target, overlay_target = raw.get("target"), overlay.get("target")
        if (
            isinstance(overlay_target, dict)
            and overlay_target.get("kind") == "local"
            and (target is None or (isinstance(target, dict) and "kind" not in target))
        ):
            # The base's target has the default kind, local: naming it again is no change of kind.
            overlay = {**overlay, "target": {k: v for k, v in overlay_target.items() if k != "kind"}}
        if "environments" in overlay:
            raise ConfigError(f"{origin}: key 'environments.{env}.environments' is not allowed.")
        raw = deep_merge(raw, overlay)
    try:
        model = Config.model_validate(raw)
    except ValidationError as exc:
        where = f"{origin} (environment '{env}')" if env is not None else origin
        # Not chained: pydantic's own text quotes the input values, secrets included, and --debug prints it.
        raise ConfigError(_format_validation_error(exc, where, raw)) from None
    model.env = env
    model.origin = origin
    model._base, model._folder = base, folder
    _resolve_paths(model, folder)
    return model
