"""One configuration, three environments: three different, correct plans."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from param_cells import set_parameters

import metasync
from metasync.config import load_config
from metasync.errors import ConfigError
from metasync.transform.rules import compile_rules

CONFIG = """
source: {kind: csn, path: src}
target: {kind: local, path: catalog/dev}
audit: {dir: audit}
rules:
  - kind: naming
    target: database
    template: "{env}_{space}"
  - kind: tags
    tags: ["env:{env}"]
environments:
  dev: {}
  test:
    target: {path: catalog/test}
  prod:
    target: {path: catalog/prod}
    rules:
      - kind: scope
        exclude: {name_glob: "TMP_*"}
      - kind: naming
        target: database
        template: "{space}"
      - kind: type
        source_type: cds.String
        glue_type: "varchar({length})"
        max_length: 255
      - kind: tags
        tags: ["env:{env}", "certified"]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "SALES" / "model.json"
    src.parent.mkdir(parents=True)
    definitions = {
        "ORDERS": {"kind": "entity", "elements": {"ID": {"type": "cds.String", "length": 10, "key": True}}},
        "TMP_SCRATCH": {"kind": "entity", "elements": {"X": {"type": "cds.String", "length": 5}}},
    }
    src.write_text(json.dumps({"definitions": definitions}))
    path = tmp_path / "metasync.yaml"
    path.write_text(CONFIG)
    return path


def plan_of(config_file: Path, env: str) -> metasync.SyncResult:
    return metasync.plan(config_file, env=env)


def table_params(result: metasync.SyncResult, name: str) -> dict[str, str]:
    cell = result.assets.filter(pl.col("name") == name)["parameters"][0]
    return set_parameters(cell)


def test_three_environments_give_three_plans(config_file: Path):
    dev, test, prod = (plan_of(config_file, env) for env in ("dev", "test", "prod"))
    assert set(dev.assets["glue_database"]) == {"dev_sales"}
    assert set(test.assets["glue_database"]) == {"test_sales"}
    assert set(prod.assets["glue_database"]) == {"sales"}
    assert sorted(dev.plan["name"]) == sorted(test.plan["name"]) == ["ORDERS", "TMP_SCRATCH"]
    assert prod.plan["name"].to_list() == ["ORDERS"]
    assert table_params(dev, "ORDERS")["tags"] == "env:dev"
    assert table_params(prod, "ORDERS")["tags"] == "certified,env:prod"
    assert dev.columns.filter(pl.col("name") == "ORDERS")["glue_type"].to_list() == ["string"]
    assert prod.columns["glue_type"].to_list() == ["varchar(10)"]


def test_each_environment_writes_its_own_target(config_file: Path):
    for env in ("dev", "test", "prod"):
        result = metasync.sync(config_file, env=env)
        assert result.summary["status"] == "succeeded"
    catalog = config_file.parent / "catalog"
    assert sorted(p.name for p in (catalog / "dev").iterdir()) == ["dev_sales"]
    assert sorted(p.name for p in (catalog / "test").iterdir()) == ["test_sales"]
    assert sorted(p.name for p in (catalog / "prod").iterdir()) == ["sales"]
    assert sorted(p.stem for p in (catalog / "prod" / "sales" / "tables").iterdir()) == ["orders"]


def test_the_readme_example_config_loads_for_every_environment():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section:rules -->", 1)[1]
    block = section.split("```yaml", 1)[1].split("```", 1)[0]
    raw = yaml.safe_load(block)
    assert sorted(raw["environments"]) == ["dev", "prod", "test"]
    for env in raw["environments"]:
        config = load_config(raw, env=env)
        compile_rules(config.rules, env=config.env)


def test_an_unknown_environment_is_a_config_error(config_file: Path):
    with pytest.raises(ConfigError, match="environment 'staging' is not defined"):
        plan_of(config_file, "staging")
