"""Shape checks of the JSON Schemas a request carries (tool parameters, structured-output schemas).

Translators walk these schemas (Gemini's is rewritten keyword by keyword), so a schema whose
structural keywords hold the wrong kind of value is refused here with a 400 naming the field and the
keyword, instead of failing deep inside a translation. Only structure is checked: which keywords
hold schemas, lists of schemas, maps of schemas, strings or lists of strings. Whether a provider
supports a keyword is the provider's business.
"""

from __future__ import annotations

from typing import Any, NoReturn

from router.errors import InvalidRequest

# Keywords whose value is one schema (an object, or a boolean in JSON Schema 2019+).
_ONE = frozenset(
    {
        "additionalProperties",
        "additionalItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
    }
)
# Keywords whose value is a list of schemas.
_LIST = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
# Keywords whose value maps names to schemas.
_MAP = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
MAX_DEPTH = 64


def check_schema(schema: object, param: str) -> None:
    """Raise a 400 naming ``param`` (and the keyword's path inside it) if ``schema`` is malformed."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"Invalid value for '{param}': a JSON Schema must be an object.", param=param)
    _check(schema, param, "", 0)


def _check(node: dict[str, Any], param: str, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        _fail(param, where, f"nests deeper than {MAX_DEPTH} levels")
    for key, value in node.items():
        at = f"{where}.{key}" if where else key
        if key in _MAP:
            if not isinstance(value, dict):
                _fail(param, at, "must be an object mapping names to schemas")
            for name, sub in value.items():
                _sub(sub, param, f"{at}.{name}", depth)
        elif key in _LIST:
            if not isinstance(value, list):
                _fail(param, at, "must be an array of schemas")
            for i, sub in enumerate(value):
                _sub(sub, param, f"{at}[{i}]", depth)
        elif key in _ONE:
            _sub(value, param, at, depth)
        elif key == "items":
            # One schema, or (before 2020-12) a list of them.
            if isinstance(value, list):
                for i, sub in enumerate(value):
                    _sub(sub, param, f"{at}[{i}]", depth)
            else:
                _sub(value, param, at, depth)
        elif key == "type":
            if not isinstance(value, str) and not (
                isinstance(value, list) and value and all(isinstance(t, str) for t in value)
            ):
                _fail(param, at, "must be a type name or an array of type names")
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
                _fail(param, at, "must be an array of property names")
        elif key == "enum":
            if not isinstance(value, list):
                _fail(param, at, "must be an array")
        elif key in ("$ref", "description", "title", "format", "pattern") and not isinstance(value, str):
            _fail(param, at, "must be a string")


def _sub(value: object, param: str, where: str, depth: int) -> None:
    if isinstance(value, bool):
        return
    if not isinstance(value, dict):
        _fail(param, where, "must be a schema (an object)")
    _check(value, param, where, depth + 1)


def _fail(param: str, where: str, problem: str) -> NoReturn:
    raise InvalidRequest(f"Invalid schema for '{param}': '{where}' {problem}.", param=f"{param}.{where}")
