"""Hand-built write requests and direct moto access for the Glue target tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import polars as pl

from metasync.config import GlueTargetConfig
from metasync.targets.base import WriteRequest

REGION = "eu-central-1"

TABLE_ROW_SCHEMA: dict[str, Any] = {
    "space": pl.Utf8,
    "name": pl.Utf8,
    "glue_database": pl.Utf8,
    "glue_table": pl.Utf8,
    "action": pl.Utf8,
    "batch": pl.Int64,
    "hash": pl.Utf8,
    "table_input": pl.Utf8,
    "version_id": pl.Utf8,
    "upstreams": pl.List(pl.Utf8),
}


def table_input(
    space: str,
    name: str,
    *,
    table: str | None = None,
    columns: list[dict[str, Any]] | None = None,
    description: str | None = "a table",
    revision: int = 0,
    parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A TableInput as the mapping stage builds it, with a hash over its content."""
    body: dict[str, Any] = {
        "Name": table or name.lower(),
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "metasync:managed": "true",
            "metasync:space": space,
            "metasync:name": name,
            **(parameters or {}),
        },
        "StorageDescriptor": {
            "Columns": columns or [{"Name": "id", "Type": "int"}, {"Name": f"v{revision}", "Type": "string"}]
        },
    }
    if description is not None:
        body["Description"] = description
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    body["Parameters"]["metasync:hash"] = digest
    return body


def row(
    space: str,
    name: str,
    *,
    action: str = "create",
    batch: int = 0,
    upstreams: list[str] | None = None,
    version_id: str | None = None,
    **table_options: Any,
) -> dict[str, Any]:
    """One table row of a WriteRequest."""
    body = table_input(space, name, **table_options)
    return {
        "space": space,
        "name": name,
        "glue_database": space.lower(),
        "glue_table": body["Name"],
        "action": action,
        "batch": batch,
        "hash": body["Parameters"]["metasync:hash"],
        "table_input": json.dumps(body),
        "version_id": version_id,
        "upstreams": upstreams or [],
    }


def request(rows: list[dict[str, Any]], databases: list[str] | None = None) -> WriteRequest:
    """A WriteRequest creating `databases` and writing `rows`."""
    names = databases if databases is not None else sorted({r["glue_database"] for r in rows})
    return WriteRequest(
        databases=pl.DataFrame(
            {"glue_database": names, "database_input": [json.dumps({"Name": n}) for n in names]},
            schema={"glue_database": pl.Utf8, "database_input": pl.Utf8},
        ),
        tables=pl.DataFrame(rows, schema=TABLE_ROW_SCHEMA),
    )


def target_settings(endpoint: str, **overrides: Any) -> dict[str, Any]:
    """The `target` section of a config pointing at `endpoint`, fast enough for tests."""
    values: dict[str, Any] = {
        "kind": "glue",
        "region": REGION,
        "endpoint_url": endpoint,
        "max_requests_per_second": 2000,
        "max_workers": 4,
        "max_retry_seconds": 30,
    }
    return values | overrides


def config(endpoint: str, **overrides: Any) -> GlueTargetConfig:
    """A validated Glue target config pointing at `endpoint`."""
    return GlueTargetConfig.model_validate(target_settings(endpoint, **overrides))


def direct_client(moto_url: str) -> Any:
    """A boto3 Glue client talking to moto directly (not through the proxy), for setup and checks."""
    return boto3.client("glue", region_name=REGION, endpoint_url=moto_url)


def all_tables(moto_url: str, database: str) -> list[dict[str, Any]]:
    """Every table moto holds in `database` (moto answers in one page)."""
    return list(direct_client(moto_url).get_tables(DatabaseName=database)["TableList"])
