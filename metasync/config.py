"""Configuration: pydantic models for the YAML file, `${VAR}` interpolation, environments, relative paths."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from metasync.errors import ConfigError
from metasync.models import ASSET_KINDS
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


# ---------------------------------------------------------------- sources
class CsnSourceConfig(_Strict):
    """CSN exports on disk: one file, or a folder searched recursively for *.json and *.csn."""

    kind: Literal["csn"] = "csn"
    path: Path
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
        if value is not None and ("." in value or not value.strip()):
            raise ValueError("a space name must be non-empty and contain no dot")
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
    path: Path = Path("catalog")


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
    dir: Path = Path("metasync-audit")


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
    whole, since the keys of one kind mean nothing to another.
    """
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if (
            isinstance(value, dict)
            and isinstance(current, dict)
            and value.get("kind", current.get("kind")) == current.get("kind")
        ):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _key_path(loc: tuple[Any, ...]) -> str:
    """Join a pydantic error location into a config key path, dropping discriminated-union tags."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        if isinstance(part, str) and (previous in ("source", "target") or isinstance(previous, int)):
            if part in _UNION_TAGS:
                continue
        parts.append(f"[{part}]" if isinstance(part, int) else part)
    return ".".join(parts).replace(".[", "[")


_UNION_TAGS = {"csn", "datasphere", "local", "glue"}


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    problems = []
    for err in exc.errors():
        loc = _key_path(err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{loc}'")
        elif err["type"] == "missing":
            problems.append(f"missing key '{loc}'")
        elif err["type"] == "path_type":
            problems.append(f"key '{loc}': must be a path, written as text")
        elif err["type"] == "union_tag_invalid":
            problems.append(f"'{loc}': {err['msg']}")
        else:
            # A validator's own sentence, without pydantic's label.
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"key '{loc}': {message}")
    return f"{origin}: " + "; ".join(problems) + "."


class _YamlLoader(yaml.SafeLoader):
    """YAML with booleans spelled true/false only (as YAML 1.2): `on`, `off`, `yes` and `no` stay words, so
    keys such as a rule's `on:` read as written. Pydantic still takes those words as booleans where one is due."""


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
    raw = _interpolate(raw, origin)
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
        if "environments" in overlay:
            raise ConfigError(f"{origin}: key 'environments.{env}.environments' is not allowed.")
        raw = deep_merge(raw, overlay)
    try:
        model = Config.model_validate(raw)
    except ValidationError as exc:
        where = f"{origin} (environment '{env}')" if env is not None else origin
        # Not chained: pydantic's own text quotes the input values, secrets included, and --debug prints it.
        raise ConfigError(_format_validation_error(exc, where)) from None
    model.env = env
    model.origin = origin
    model._base, model._folder = base, folder
    _resolve_paths(model, folder)
    return model
