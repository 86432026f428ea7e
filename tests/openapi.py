"""Validate answers against the official OpenAI OpenAPI schemas (MIT; see tests/fixtures/OPENAI-LICENSE).

Extracted from openai/openai-openapi at commit f85dbe2 (2026-08-21). The schemas the tests need are
extracted, with everything they reference, into
``tests/fixtures/openai-schemas.json`` so that the suite does not depend on anything outside the repo:
``python -m tests.openapi PATH/TO/openapi.yaml`` refreshes that file.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

FIXTURE = Path(__file__).parent / "fixtures" / "openai-schemas.json"
WANTED = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "Response",
    "ResponseStreamEvent",
]
PREFIX = "#/components/schemas/"


@functools.cache
def _registry() -> tuple[Registry, dict[str, Any]]:
    document = json.loads(FIXTURE.read_text())
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource("openai.json", resource), document


def validate(instance: Any, schema_name: str) -> None:
    """Raise ``jsonschema.ValidationError`` if ``instance`` does not fit the named OpenAI schema."""
    registry, _ = _registry()
    schema = {"$ref": f"openai.json{PREFIX}{schema_name}"}
    jsonschema.Draft202012Validator(schema, registry=registry).validate(instance)


def _extract(spec_path: Path) -> dict[str, Any]:
    import yaml

    spec = yaml.load(spec_path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = spec["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = list(WANTED)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = schemas[name]
        todo.extend(_refs(schemas[name]))
    return {"components": {"schemas": {name: _nullable(keep[name]) for name in sorted(keep)}}}


def _nullable(node: Any) -> Any:
    """OpenAPI's ``nullable: true`` (which JSON Schema ignores) → ``anyOf`` with ``null``."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            found.append(ref[len(PREFIX) :])
        for value in node.values():
            found.extend(_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_refs(value))
    return found


if __name__ == "__main__":
    extracted = _extract(Path(sys.argv[1]))
    FIXTURE.write_text(json.dumps(extracted, indent=1, sort_keys=True) + "\n")
    print(f"{FIXTURE}: {len(extracted['components']['schemas'])} schemas")
