"""JSON Schema → the OpenAPI 3.0 subset that Gemini accepts for tool parameters and response schemas."""

from __future__ import annotations

from typing import Any

SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "anyOf",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "propertyOrdering",
    }
)


def sanitize_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema → the OpenAPI subset Gemini accepts: refs inlined, unknown keywords dropped."""
    definitions: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        found = schema.get(key)
        if isinstance(found, dict):
            definitions.update(found)
    result: dict[str, Any] = _sanitize(schema, definitions, depth=0)
    return result


def _sanitize(node: Any, definitions: dict[str, Any], depth: int) -> Any:
    if not isinstance(node, dict) or depth > 32:
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = definitions.get(ref.rsplit("/", 1)[-1])
        if not isinstance(target, dict):
            target = {}
        return _sanitize({**target, **{k: v for k, v in node.items() if k != "$ref"}}, definitions, depth + 1)
    out: dict[str, Any] = {}
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        out["type"] = kinds[0] if kinds else "string"
        if "null" in kind:
            out["nullable"] = True
    elif isinstance(kind, str):
        out["type"] = kind
    if "const" in node:
        out["enum"] = [node["const"]]
    any_of = node.get("anyOf") or node.get("oneOf")
    if isinstance(any_of, list):
        options = [o for o in any_of if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(options) < len(any_of):
            out["nullable"] = True
        only = _sanitize(options[0], definitions, depth + 1) if len(options) == 1 else None
        if isinstance(only, dict):
            out.update(only)
        elif len(options) != 1:
            out["anyOf"] = [_sanitize(o, definitions, depth + 1) for o in options]
    for key, value in node.items():
        if key not in SCHEMA_KEYS or key in ("type", "anyOf"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _sanitize(sub, definitions, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = _sanitize(value, definitions, depth + 1)
        else:
            out[key] = value
    return out
