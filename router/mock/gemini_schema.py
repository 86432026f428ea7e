"""Gemini's proto-JSON request checker: the table of fields its parser accepts, and the violations reported.

Used by ``gemini_fake`` to read requests as checked JSON, then to find what Gemini's validation refuses;
the messages mirror Gemini's own.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import msgspec

Json = dict[str, Any]

V1BETA: Final = "type.googleapis.com/google.ai.generativelanguage.v1beta."
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_FUNCTION_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
_NO_SIGNATURE: Final = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
    "function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
_BAD_FUNCTION_NAME: Final = (
    "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), "
    "underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 128."
)

# --- the proto-JSON field table: what Gemini's parser accepts, per message type --------------------
# A field maps to a message name, a scalar (str, bool, int, num, bytes), "type" (the Schema type enum),
# "obj" (a free JSON object) or "any" (any JSON value); "[]" marks a repeated field, "{}" a map and a
# leading "!" a required one.
# fmt: off
_MIME_TYPES: Final = (None, "text/plain", "application/json", "application/xml", "application/yaml",
                      "text/x.enum")


_SCALARS: Final[Mapping[str, str]] = {"str": "TYPE_STRING", "bool": "TYPE_BOOL", "int": "TYPE_INT32",
                                      "num": "TYPE_FLOAT", "bytes": "TYPE_BYTES"}
_SCHEMA_TYPES: Final = frozenset({"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY",
                                  "OBJECT", "NULL"})
_PART_DATA: Final = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                     "codeExecutionResult")
_FIELDS: Final[Mapping[str, Mapping[str, str]]] = {
    "GenerateContentRequest": {
        "model": "str", "contents": "Content[]", "systemInstruction": "Content", "tools": "Tool[]",
        "toolConfig": "ToolConfig", "safetySettings": "SafetySetting[]", "cachedContent": "str",
        "generationConfig": "GenerationConfig"},
    "Content": {"role": "str", "parts": "Part[]"},
    "Part": {
        "text": "str", "inlineData": "Blob", "fileData": "FileData", "functionCall": "FunctionCall",
        "functionResponse": "FunctionResponse", "executableCode": "obj", "codeExecutionResult": "obj",
        "thought": "bool", "thoughtSignature": "bytes", "videoMetadata": "obj", "partMetadata": "obj",
        "mediaResolution": "obj"},
    "Blob": {"mimeType": "!str", "data": "!bytes"},
    "FileData": {"mimeType": "str", "fileUri": "!str"},
    "FunctionCall": {"id": "str", "name": "!str", "args": "obj"},
    "FunctionResponse": {"id": "str", "name": "!str", "response": "!obj", "willContinue": "bool",
                         "scheduling": "str", "parts": "obj[]"},
    "Tool": {
        "functionDeclarations": "FunctionDeclaration[]", "googleSearch": "obj", "codeExecution": "obj",
        "googleSearchRetrieval": "obj", "urlContext": "obj", "fileSearch": "obj", "googleMaps": "obj",
        "computerUse": "obj"},
    "FunctionDeclaration": {
        "name": "!str", "description": "str", "behavior": "str", "parameters": "Schema",
        "parametersJsonSchema": "any", "response": "Schema", "responseJsonSchema": "any"},
    "Schema": {
        "type": "type", "format": "str", "title": "str", "description": "str", "nullable": "bool",
        "enum": "str[]", "maxItems": "int", "minItems": "int", "properties": "Schema{}", "required": "str[]",
        "minProperties": "int", "maxProperties": "int", "minLength": "int", "maxLength": "int",
        "pattern": "str", "example": "any", "anyOf": "Schema[]", "propertyOrdering": "str[]",
        "default": "any", "items": "Schema", "minimum": "num", "maximum": "num"},
    "ToolConfig": {"functionCallingConfig": "FunctionCallingConfig", "retrievalConfig": "obj"},
    "FunctionCallingConfig": {"mode": "str", "allowedFunctionNames": "str[]"},
    "SafetySetting": {"category": "!str", "threshold": "!str", "method": "str"},
    "GenerationConfig": {
        "stopSequences": "str[]", "responseMimeType": "str", "responseSchema": "Schema",
        "responseJsonSchema": "any", "responseModalities": "str[]", "candidateCount": "int",
        "maxOutputTokens": "int", "temperature": "num", "topP": "num", "topK": "num", "seed": "int",
        "presencePenalty": "num", "frequencyPenalty": "num", "responseLogprobs": "bool", "logprobs": "int",
        "enableEnhancedCivicAnswers": "bool", "speechConfig": "obj", "imageConfig": "obj",
        "mediaResolution": "str", "thinkingConfig": "ThinkingConfig"},
    "ThinkingConfig": {"includeThoughts": "bool", "thinkingBudget": "int", "thinkingLevel": "str"},
    "CountTokensRequest": {"contents": "Content[]", "generateContentRequest": "GenerateContentRequest"},
    "EmbedContentRequest": {"model": "str", "content": "!Content", "taskType": "str", "title": "str",
                            "outputDimensionality": "int"},
    "BatchEmbedContentsRequest": {"requests": "!EmbedContentRequest[]"},
}
# fmt: on


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _scalar_ok(kind: str, value: object) -> bool:
    if kind == "bool" or isinstance(value, bool):
        return kind == "bool" and isinstance(value, bool)
    if kind == "int":  # proto-JSON also takes integers as strings
        return isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
    if kind == "num":
        return isinstance(value, int | float)
    if not isinstance(value, str) or kind == "str":
        return isinstance(value, str)
    try:  # bytes: standard or URL-safe base64
        b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        return False
    return True


def _tag(kind: str) -> str:
    base = kind.rstrip("[]{}")
    return _SCALARS.get(base) or ("google.protobuf.Struct" if base == "obj" else V1BETA + base)


def _shown(value: object) -> str:
    return msgspec.json.encode(value).decode()[:80]


def violations(value: object, kind: str, at: str, root: str) -> Iterator[tuple[str, str]]:
    """(field, description) for everything Gemini's parser rejects in a ``kind`` value. On the way it drops
    nulls (unset in proto-JSON) and renames snake_case fields to camelCase, so readers see one spelling."""
    if kind.endswith(("[]", "{}")):
        is_map = kind.endswith("{}")
        if not isinstance(value, dict if is_map else list):
            yield at, f"Invalid value at '{at}' ({_tag(kind)}), {_shown(value)}"
            return
        for index, item in enumerate(value.values() if isinstance(value, dict) else value):
            yield from violations(item, kind[:-2], f"{at}[{index}{'].value' if is_map else ']'}", root)
        return
    if kind == "any":
        return
    if kind == "type":
        if not (isinstance(value, str) and value.upper() in _SCHEMA_TYPES):
            yield at, f"Invalid value at '{at}' ({V1BETA}Type), {_shown(value)}"
        return
    if kind in _SCALARS:
        if not _scalar_ok(kind, value):
            detail = "Base64 decoding failed for " if kind == "bytes" else ""
            yield at, f"Invalid value at '{at}' ({_tag(kind)}), {detail}{_shown(value)}"
        return
    if not isinstance(value, dict):
        yield at, f"Invalid value at '{at}' ({_tag(kind)}), {_shown(value)}"
        return
    if kind == "obj":
        return
    fields = _FIELDS[kind]
    where = f" at '{at}'" if at else ""
    for key in list(value):
        item = value.pop(key)
        name = key if key in fields else _camel(key)
        child = fields.get(name, "").lstrip("!")
        if not child:
            yield at, f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'
        elif isinstance(item, list) and not child.endswith("[]") and child != "any":
            reason = "Proto field is not repeating, cannot start list."
            yield at, f'Invalid JSON payload received. Unknown name "{key}"{where}: {reason}'
        elif item is not None:
            value[name] = item
            yield from violations(item, child, f"{at}.{_snake(name)}".lstrip("."), root)
    for name in (n for n, child in fields.items() if child.startswith("!") and n not in value):
        field = f"{at}.{_snake(name)}".lstrip(".")
        yield field, f"* {root}.{field}: {_snake(name)} must be specified.\n"
    if kind == "Part":
        data = [key for key in _PART_DATA if key in value]
        if len(data) > 1:
            yield (
                at,
                f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{data[1]}'",
            )
        elif not data:
            yield (
                f"{at}.data",
                f"* {root}.{at}.data: required oneof field 'data' must have one initialized field",
            )


# --- request checks beyond the field table ---------------------------------------------------


def content_problems(content: Json, at: str, root: str = "GenerateContentRequest") -> Iterator[str]:
    """What Gemini refuses in one ``Content`` at ``at``, in its words."""
    if content.get("role") not in (None, "", "user", "model") and at != "system_instruction":
        yield "Please use a valid role: user, model."
    if not content.get("parts"):
        yield f"* {root}.{at}.parts: contents.parts must not be empty.\n"


def request_problems(req: Json, model: str) -> Iterator[str]:
    """What Gemini's request validation refuses, in its words; the handler reports the first."""
    at = "* GenerateContentRequest."
    if not req.get("contents"):
        yield f"{at}contents: contents is not specified\n"
    for index, content in enumerate(req.get("contents", ())):
        yield from content_problems(content, f"contents[{index}]")
    if "systemInstruction" in req:
        yield from content_problems(req["systemInstruction"], "system_instruction")
    for t_index, tool in enumerate(req.get("tools", ())):
        for d_index, decl in enumerate(tool.get("functionDeclarations", ())):
            where = f"{at}tools[{t_index}].function_declarations[{d_index}]"
            if not _FUNCTION_NAME.fullmatch(decl["name"]):
                yield f"{where}.name: {_BAD_FUNCTION_NAME}\n"
            if "parameters" in decl and "parametersJsonSchema" in decl:
                yield f"{where}.parameters: parameters and parameters_json_schema cannot both be set.\n"
    calling = req.get("toolConfig", {}).get("functionCallingConfig", {})
    mode = calling.get("mode")
    if mode not in (None, "MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"):
        enum = f"{V1BETA}FunctionCallingConfig.Mode"
        yield f"Invalid value at 'tool_config.function_calling_config.mode' ({enum}), \"{mode}\""
    if calling.get("allowedFunctionNames") and mode not in ("ANY", "VALIDATED"):
        yield f"{at}tool_config.function_calling_config.allowed_function_names: only allowed with mode ANY.\n"
    config = req.get("generationConfig", {})
    at += "generation_config."
    if "responseSchema" in config and "responseJsonSchema" in config:
        yield f"{at}response_schema: response_schema and response_json_schema cannot both be set.\n"
    if not 0 <= config.get("temperature", 1) <= 2:
        yield f"{at}temperature: temperature must be in the range [0.0, 2.0].\n"
    if not 0 <= config.get("topP", 1) <= 1:
        yield f"{at}top_p: top_p must be in the range [0.0, 1.0].\n"
    if not 1 <= int(config.get("candidateCount", 1)) <= 8:
        yield f"{at}candidate_count: candidate_count must be in the range [1, 8].\n"
    if config.get("responseMimeType") not in _MIME_TYPES:
        yield (
            f"{at}response_mime_type: allowed mimetypes are `text/plain`, `application/json`, "
            "`application/xml`, `application/yaml` and `text/x.enum`.\n"
        )
    if model.startswith("gemini-3"):
        yield from _missing_signatures(req["contents"])


def _missing_signatures(contents: Sequence[Json]) -> Iterator[str]:
    """Gemini 3 refuses a history whose model function calls lost their ``thoughtSignature``."""
    for index, content in enumerate(contents):
        for part in content["parts"] if content.get("role") == "model" else ():
            if "functionCall" in part and not part.get("thoughtSignature"):
                name = part["functionCall"]["name"]
                yield _NO_SIGNATURE.format(name=name, position=index + 1)
