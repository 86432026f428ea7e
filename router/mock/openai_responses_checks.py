"""How a Responses API check refuses a request: ``Rejected`` carrying OpenAI's answer, and the helpers
that word it (an unsupported value, a missing parameter, a part of the wrong shape, a strict schema's fault).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from router.mock.openai_wire import decode_failure, invalid_request

_T = TypeVar("_T")


class Rejected(Exception):
    """A request check failed; ``response`` is OpenAI's answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _listing(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def invalid_value(value: object, param: str, supported: Sequence[str]) -> Rejected:
    """The refusal of ``value`` for ``param``, listing the ``supported`` ones."""
    return Rejected(
        invalid_request(
            f"Invalid value: '{value}'. Supported values are: {_listing(supported)}.",
            param=param,
            code="invalid_value",
        )
    )


def missing_param(param: str) -> Rejected:
    """The refusal of a request that lacks ``param``."""
    return Rejected(
        invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    )


def convert(obj: Any, kind: type[_T], where: str) -> _T:
    """``obj`` (the part of the body at ``where``) as ``kind``; raises ``Rejected`` when it does not fit."""
    try:
        return msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        raise Rejected(decode_failure(exc, where)) from None


def type_of(obj: Mapping[str, Any], where: str, default: str | None = None) -> str:
    """The ``type`` of the object at ``where`` (``default`` when absent); raises ``Rejected`` when missing
    or not a string."""
    kind = obj.get("type", default)
    if kind is None:
        raise missing_param(f"{where}.type")
    if not isinstance(kind, str):
        raise Rejected(
            invalid_request(
                f"Invalid type for '{where}.type': expected a string.",
                param=f"{where}.type",
                code="invalid_type",
            )
        )
    return kind


def strict_problem(schema: Mapping[str, Any], context: tuple[str, ...] = ()) -> str | None:
    """What OpenAI's strict mode rejects in a JSON schema: objects must close and require every key."""
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, Mapping):
        if schema.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        listed = required if isinstance(required, list) else []
        missing = [str(name) for name in properties if name not in listed]
        if missing:
            return (
                f"In context={context}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, sub in properties.items():
            if isinstance(sub, Mapping):
                problem = strict_problem(sub, (*context, "properties", str(name)))
                if problem:
                    return problem
    items = schema.get("items")
    if isinstance(items, Mapping):
        return strict_problem(items, (*context, "items"))
    return None
