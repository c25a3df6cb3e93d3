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
        # An empty path would read or write the configuration's own folder.
        ('source: {kind: csn, path: ""}\n', "key 'source.path': the path is empty"),
        (
            'source: {kind: csn, path: x}\ntarget: {path: "${UNSET_VAR:-}"}\n',
            "key 'target.path': the path is empty",
        ),
        ("source: {kind: csn, path: x}\naudit: {dir: ' '}\n", "key 'audit.dir': the path is empty"),
        # A key given twice: PyYAML alone keeps the last one silently.
        (
            "source: {kind: csn, path: a/, path: /nonexistent}\n",
            "key 'source.path' appears twice: at line 1, column 21 and at line 1, column 31",
        ),
        (
            "source: {kind: csn, path: x}\ntarget:\n  kind: local\ntarget:\n  kind: glue\n",
            "key 'target' appears twice: at line 2, column 1 and at line 4, column 1",
        ),
        (
            "source: {kind: csn, path: x}\nrules:\n  - kind: tags\n    tags: [a]\n    tags: [b]\n",
            "key 'rules[0].tags' appears twice: at line 4",
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


def test_yaml_merge_keys_may_repeat_what_they_merge(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "source: {kind: csn, path: x}\n"
        "environments:\n  prod:\n    target: &glue {kind: glue, region: eu-west-1}\n"
        "  qa:\n    target:\n      <<: *glue\n      region: eu-central-1\n",
    )
    qa = load_config(path, env="qa")
    assert isinstance(qa.target, GlueTargetConfig) and qa.target.region == "eu-central-1"


def test_a_target_without_kind_is_the_documented_local_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "source: {kind: csn, path: x}\ntarget: {path: elsewhere}\n"))
    assert isinstance(cfg.target, LocalTargetConfig) and cfg.target.path == tmp_path / "elsewhere"
    with pytest.raises(
        ConfigError, match=r"unknown key 'target.region' \(no kind given: 'local' is used\)\.$"
    ):
        load_config(write(tmp_path, "source: {kind: csn, path: x}\ntarget: {region: eu-west-1}\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source: {path: x}\n", "key 'source.kind' is missing (one of: csn, datasphere)."),
        (
            "source: {kind: csn, path: x}\nrules: [{tags: [a]}]\n",
            "key 'rules[0].kind' is missing (one of: scope, naming, type, business, parameters, tags, value_map, "
            "default).",
        ),
        (
            "source: {kind: csn, path: x, read_in_subprocess: maybe}\n",
            "key 'source.read_in_subprocess': expected 'auto', true or false, got 'maybe'.",
        ),
        (
            "source: {kind: csn, path: x}\nrules: [{kind: type, source_type: 3, glue_type: string}]\n",
            "key 'rules[0].source_type': expected text or a list, got 3.",
        ),
        (
            "source: {kind: csn, path: x}\nrules: [{kind: naming, target: schema}]\n",
            "key 'rules[0].target': expected 'database', 'table' or 'column', got 'schema'.",
        ),
        ("source:\n", "key 'source' is empty; give a mapping."),
        ("source: exports\n", "key 'source': expected a mapping, got 'exports'."),
        (
            "source: {kind: csn, path: x}\nsync: {max_delete_fraction: 2}\n",
            "expected a number of at most 1, got 2",
        ),
        (
            "source: {kind: csn, path: x}\nsync: {delete_stale: perhaps}\n",
            "expected true or false, got 'perhaps'",
        ),
        ("source: {kind: csn, path: x}\nrules: {a: 1}\n", "key 'rules': expected a list, got a mapping."),
        ("source: {kind: csn, path: x, language: }\n", "key 'source.language': expected text, got nothing."),
        ("source: {kind: ftp, path: x}\n", "key 'source': unknown kind 'ftp' (one of: csn, datasphere)."),
        (
            "source: {kind: csn, path: x}\nconflicts: {by_kind: {table: {nameing: manual}}}\n",
            "unknown key 'conflicts.by_kind.table.nameing' (one of: naming, ownership, schema_drift, "
            "edited_in_target).",
        ),
        (
            "source: {kind: csn, path: x}\nconflicts: {naming: merge}\n",
            ": conflicts.naming: 'merge' is not allowed for naming conflicts",
        ),
    ],
)
def test_validation_messages_speak_of_the_file_not_of_pydantic(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message == f"{path}: {expected}" or (expected in message and message.startswith(f"{path}: "))
    for internal in (
        "Input should",
        "literal[",
        "instance of",
        "discriminator",
        "Config",
        "[key]",
        "Value error",
    ):
        assert internal not in message


def test_a_secret_of_the_wrong_type_is_not_quoted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "source: {kind: datasphere, url: 'https://t.example', client_id: a, client_secret: 987654321}\n",
    )
    with pytest.raises(ConfigError, match=r"key 'source.client_secret': expected text\.$") as caught:
        load_config(path)
    assert "987654321" not in str(caught.value)


def test_an_empty_section_reads_as_left_out(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "source: {kind: csn, path: x}\ntarget:\naudit:\nsync:\nconflicts:\nrules:\nenvironments: {dev: }\n",
    )
    cfg = load_config(path, env="dev")
    assert isinstance(cfg.target, LocalTargetConfig) and cfg.target.path == tmp_path / "catalog"
    assert cfg.audit.dir == tmp_path / "metasync-audit"
    assert cfg.rules == [] and cfg.environments == {"dev": {}} and not cfg.sync.delete_stale


def test_an_environment_section_left_empty_keeps_the_base_section(tmp_path: Path) -> None:
    text = (
        "source: {kind: csn, path: x}\ntarget: {path: shared-catalog}\naudit: {dir: shared-audit}\n"
        "environments:\n  dev:\n    target:\n    audit:\n"
    )
    cfg = load_config(write(tmp_path, text), env="dev")
    assert cfg.target.path == tmp_path / "shared-catalog" and cfg.audit.dir == tmp_path / "shared-audit"


def test_an_environment_naming_the_default_kind_merges_with_the_base(tmp_path: Path) -> None:
    text = (
        "source: {kind: csn, path: x}\ntarget: {path: base-catalog}\n"
        "environments:\n  dev: {target: {kind: local}}\n  prod: {target: {kind: glue, region: eu-west-1}}\n"
    )
    assert load_config(write(tmp_path, text), env="dev").target.path == tmp_path / "base-catalog"
    assert load_config(write(tmp_path, text), env="prod").target.kind == "glue"


def test_only_the_chosen_environment_needs_its_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROD_ROLE_FOR_TEST", raising=False)
    text = (
        "source: {kind: csn, path: x}\n"
        "environments:\n  dev: {}\n"
        "  prod: {target: {kind: glue, region: eu-west-1, role_arn: '${PROD_ROLE_FOR_TEST}'}}\n"
    )
    path = write(tmp_path, text)
    assert load_config(path).env is None and load_config(path, env="dev").env == "dev"
    with pytest.raises(
        ConfigError, match=r"environments\.prod\.target\.role_arn' uses \$\{PROD_ROLE_FOR_TEST\}"
    ):
        load_config(path, env="prod")


def test_a_kind_listed_twice_in_the_priority_is_refused(tmp_path: Path) -> None:
    text = "source: {kind: csn, path: x}\nsync: {priority: [analytic_model, view, analytic_model]}\n"
    with pytest.raises(ConfigError, match=r"\['analytic_model'\] listed more than once"):
        load_config(write(tmp_path, text))
