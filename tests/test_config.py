"""Configuration: validation messages, interpolation, environments, relative paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from metasync.config import CsnSourceConfig, GlueTargetConfig, LocalTargetConfig, deep_merge, load_config
from metasync.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "metasync.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_gets_the_embedded_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "source: {kind: csn, path: exports, space: SALES}\n"))
    assert isinstance(cfg.source, CsnSourceConfig) and cfg.source.path == tmp_path / "exports"
    assert isinstance(cfg.target, LocalTargetConfig) and cfg.target.path == tmp_path / "catalog"
    assert cfg.audit.dir == tmp_path / "metasync-audit"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source: {kind: csn, path: x, pathh: y}\n", "unknown key 'source.pathh'"),
        ("source: {kind: csn, path: x}\ntarget: {kind: glue, regoin: eu}\n", "unknown key 'target.regoin'"),
        ("source: {kind: csn, path: x}\nextra: 1\n", "unknown key 'extra'"),
        ("source: {kind: ftp, path: x}\n", "'source'"),
        ("target: {kind: local}\n", "missing key 'source'"),
        ("source: {kind: csn, path: x}\nrules: [{kind: nonsense}]\n", "rules[0]"),
        ("source: {kind: csn, path: x, space: A.B}\n", "source.space"),
        ("source: [unclosed\n", "not valid YAML at line"),
        ("- a list\n", "must hold a mapping"),
        (
            "source: {kind: csn, path: x}\ntarget: {kind: glue, endpoint_url: '127.0.0.1:5000'}\n",
            "key 'target.endpoint_url': '127.0.0.1:5000' is not an http:// or https:// URL",
        ),
        (
            "source: {kind: csn, path: x}\ntarget: {kind: glue, region: eu central 1}\n",
            "key 'target.region': 'eu central 1' is not an AWS region name",
        ),
        (
            "source: {kind: csn, path: x}\nsync: {priority: [table, nonsense]}\n",
            "key 'sync.priority': unknown asset kind(s) ['nonsense']",
        ),
    ],
)
def test_bad_configuration_names_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("source: {kind: csn, path: x, space: R\u00e9}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml is not UTF-8 text \(the byte at offset 37 "):
        load_config(path)
    path.write_bytes(b"\xef\xbb\xbfsource: {kind: csn, path: x, space: S}\n")  # a byte-order mark is fine
    assert load_config(path).source.space == "S"


def test_yaml_reads_on_as_a_key_and_yes_still_as_true(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "source: {kind: csn, path: x}\nsync: {delete_stale: yes}\n"
        "rules: [{kind: default, field: description, on: assets, value: none}]\n",
    )
    cfg = load_config(path)
    assert cfg.sync.delete_stale is True
    assert cfg.rules[0].on == "assets"


def test_a_config_of_another_type_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="a configuration is a YAML file's path, a dict or a Config, not int"
    ):
        load_config(42)  # type: ignore[arg-type]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")


def test_environment_variables_are_interpolated_with_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_DIR", "/data/exports")
    monkeypatch.delenv("REGION", raising=False)
    cfg = load_config(
        write(
            tmp_path,
            "source: {kind: csn, path: '${EXPORT_DIR}/sales', space: S}\n"
            "target: {kind: glue, region: '${REGION:-eu-central-1}'}\n",
        )
    )
    assert cfg.source.path == Path("/data/exports/sales")
    assert isinstance(cfg.target, GlueTargetConfig) and cfg.target.region == "eu-central-1"


def test_a_missing_variable_names_key_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write(tmp_path, "source: {kind: csn, path: '${NOT_SET_ANYWHERE}'}\n")
    with pytest.raises(ConfigError, match=r"key 'source.path' uses \$\{NOT_SET_ANYWHERE\}"):
        load_config(path)


def test_dicts_are_interpolated_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPACE_NAME", "FINANCE")
    cfg = load_config({"source": {"kind": "csn", "path": "x", "space": "${SPACE_NAME}"}}, base_dir=tmp_path)
    assert cfg.source.space == "FINANCE" and cfg.source.path == tmp_path / "x"


def test_env_deep_merges_over_the_rest(tmp_path: Path) -> None:
    text = (
        "source: {kind: csn, path: exports, space: S}\n"
        "target: {kind: local, path: dev-catalog}\n"
        "environments:\n"
        "  prod: {target: {kind: glue, region: eu-west-1}, sync: {delete_stale: true}}\n"
        "  test: {target: {path: test-catalog}}\n"
    )
    path = write(tmp_path, text)
    prod = load_config(path, env="prod")
    assert isinstance(prod.target, GlueTargetConfig) and prod.target.region == "eu-west-1"
    assert prod.sync.delete_stale and prod.env == "prod"
    test = load_config(path, env="test")
    assert isinstance(test.target, LocalTargetConfig) and test.target.path == tmp_path / "test-catalog"
    with pytest.raises(ConfigError, match=r"environment 'qa' is not defined.*prod, test"):
        load_config(path, env="qa")


def test_a_loaded_config_switched_to_another_environment_starts_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "source: {kind: csn, path: exports, space: S}\n"
        "target: {kind: local, path: catalog}\n"
        "environments:\n"
        "  dev: {sync: {delete_stale: true}, rules: [{kind: naming, target: database, template: 'dev_{space}'}]}\n"
        "  prod: {target: {path: prod-catalog}}\n"
    )
    path = write(tmp_path, text)
    monkeypatch.chdir(tmp_path.parent)  # relative paths still resolve against the file's folder
    dev = load_config(path, env="dev")
    prod = load_config(dev, env="prod")
    fresh = load_config(path, env="prod")
    assert prod.model_dump() == fresh.model_dump() and prod.env == "prod"
    assert not prod.sync.delete_stale and prod.rules == []
    assert prod.target.path == tmp_path / "prod-catalog"
    assert load_config(prod, env="dev").model_dump() == dev.model_dump()


def test_a_loaded_config_does_not_follow_later_changes_to_the_callers_dict(tmp_path: Path) -> None:
    settings = {
        "source": {"kind": "csn", "path": "exports", "space": "S"},
        "environments": {"dev": {}, "prod": {}},
    }
    dev = load_config(settings, env="dev", base_dir=tmp_path)
    settings["source"]["path"] = "changed"
    assert load_config(dev, env="prod").source.path == tmp_path / "exports"


def test_switching_environments_interpolates_variables_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_PATH", "exports-${NOT_A_VARIABLE}")  # a value that looks like a placeholder
    path = write(
        tmp_path, "source: {kind: csn, path: '${SECRET_PATH}', space: S}\nenvironments: {dev: {}, prod: {}}\n"
    )
    prod = load_config(load_config(path, env="dev"), env="prod")
    assert prod.source.path == tmp_path / "exports-${NOT_A_VARIABLE}"


def test_an_environment_overlay_with_an_unknown_key_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path, "source: {kind: csn, path: x}\nenvironments: {dev: {target: {kind: local, pth: y}}}\n"
    )
    load_config(path)  # not chosen: not checked
    with pytest.raises(ConfigError, match=r"\(environment 'dev'\): unknown key 'target.pth'"):
        load_config(path, env="dev")


def test_deep_merge_does_not_change_its_inputs() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    overlay = {"a": {"b": 2}, "e": 3}
    assert deep_merge(base, overlay) == {"a": {"b": 2, "c": [1]}, "d": 1, "e": 3}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


def test_an_overlay_that_switches_kind_replaces_the_section() -> None:
    base = {"target": {"kind": "local", "path": "catalog"}}
    assert deep_merge(base, {"target": {"kind": "glue", "region": "eu-west-1"}}) == {
        "target": {"kind": "glue", "region": "eu-west-1"}
    }
    assert deep_merge(base, {"target": {"path": "other"}}) == {"target": {"kind": "local", "path": "other"}}
