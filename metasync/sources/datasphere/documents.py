"""What a design-time read must answer to be taken as the object's CSN.

A tenant (or a proxy in front of it) may answer HTTP 200 with a body that is JSON but not the object: an error
envelope (`{"error": ...}`), an empty document, or the CSN of another object. Taken as it is, such a body makes
the object disappear from the source, and `--delete-stale` then deletes its table. So every document, read or
taken from the incremental state, must hold the object it was read for; one that does not is a failure of its
space, like any other answer metasync cannot read.
"""

from __future__ import annotations

import json
from typing import Any

from metasync.sources.datasphere.flows import FLOW_SECTIONS


def _excerpt(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text[:limit] + ("…" if len(text) > limit else "")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), "a number"
    )


def _holds(definitions: dict[str, Any], name: str) -> bool:
    """Whether `definitions` defines `name`, directly or inside a context of another space (`CONTEXT.NAME`,
    as the tenant stores an object that a context annotated with `@DataWarehouse.space.name` places there)."""
    if isinstance(definitions.get(name), dict):
        return True
    suffix = "." + name
    return any(
        key.endswith(suffix)
        and isinstance(definitions.get(key), dict)
        and isinstance(context := definitions.get(key[: -len(suffix)]), dict)
        and context.get("kind") == "context"
        for key in definitions
    )


def document_problem(body: Any, object_type: str, technical_name: str) -> str | None:
    """Why `body` is not the CSN document of object `technical_name` of `object_type`, or None when it is.

    Entities (tables, views, analytic models) must be defined under `definitions`; flows under the section named
    after their type (`dataflows: {NAME: {...}}`), which is what the readers take them from.
    """
    if not isinstance(body, dict):
        return f"the answer is {_kind(body)}, not a JSON object"
    section = object_type if object_type in FLOW_SECTIONS else "definitions"
    if section not in body and "error" in body:
        return f"the answer is an error, not CSN: {_excerpt(body['error'])}"
    content = body.get(section)
    if content is None:
        return f"the answer has no '{section}': {_excerpt(body)}"
    if not isinstance(content, dict):
        return f"its '{section}' is {_kind(content)}, not an object"
    if section == "definitions" and _holds(content, technical_name):
        return None
    if section != "definitions" and isinstance(content.get(technical_name), dict):
        return None
    found = ", ".join(repr(k) for k in list(content)[:5]) + (", …" if len(content) > 5 else "")
    return f"its '{section}' do not define {technical_name!r} (they hold {found or 'nothing'})"
