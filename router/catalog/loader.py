"""Catalog loader: YAML → validated, frozen ``Catalog``; every error names file, line, entry and field."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

from router.catalog.entry import EntryError
from router.catalog.model import Catalog, build_catalog
from router.catalog.schema import (
    AccessSpec,
    AliasSpec,
    CacheSpec,
    CatalogFile,
    ModelSpec,
    ProviderSpec,
    RoutingSpec,
)

S = TypeVar("S")
_SECTIONS: dict[str, type[msgspec.Struct]] = {"providers": ProviderSpec, "models": ModelSpec}
_TOP_LEVEL = {"version", "providers", "models", "aliases", "routing", "access", "cache"}
_KEY_LIKE = re.compile(r"^(sk-|sk_|AIza|xai-|gsk_)|^[A-Za-z0-9_\-]{32,}$")
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CatalogError(ValueError):
    """A catalog that cannot be used; the message says where and why."""


def load_catalog(path: str | Path, environ: Mapping[str, str]) -> Catalog:
    """Read, validate and resolve the catalog at ``path`` against ``environ``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc.strerror or exc}") from None
    return parse_catalog(text, environ, source=str(path))


def parse_catalog(text: str, environ: Mapping[str, str], *, source: str = "<catalog>") -> Catalog:
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(f"{where}: not valid YAML: {problem}") from None
    locate = _Locator(text, source)
    spec = _validate(data, locate)
    try:
        return build_catalog(spec, environ)
    except EntryError as exc:
        raise CatalogError(locate.message(exc.path, exc.reason)) from None


def _validate(data: Any, locate: _Locator) -> CatalogFile:
    if not isinstance(data, dict):
        raise CatalogError(locate.message((), "the catalog must be a mapping with providers and models"))
    for key in data:
        if key not in _TOP_LEVEL:
            known = ", ".join(sorted(_TOP_LEVEL))
            raise CatalogError(locate.message((str(key),), f"unknown section (known: {known})"))
    _refuse_inline_keys(data, locate)
    _versions_as_text(data)
    sections: dict[str, Any] = {}
    for name, struct in _SECTIONS.items():
        entries = data.get(name)
        if not isinstance(entries, dict) or not entries:
            raise CatalogError(locate.message((name,), f"'{name}' must be a non-empty mapping"))
        sections[name] = {
            str(key): _convert(value, struct, (name, str(key)), locate) for key, value in entries.items()
        }
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise CatalogError(locate.message(("aliases",), "'aliases' must be a mapping"))
    sections["aliases"] = {
        str(key): value
        if isinstance(value, str)
        else _convert(value, AliasSpec, ("aliases", str(key)), locate)
        for key, value in aliases.items()
    }
    if "routing" in data:
        sections["routing"] = _convert(data["routing"], RoutingSpec, ("routing",), locate)
    if "access" in data:
        sections["access"] = _convert(data["access"] or {}, AccessSpec, ("access",), locate)
    if "cache" in data:
        sections["cache"] = _convert(data["cache"] or {}, CacheSpec, ("cache",), locate)
    if "version" in data:
        sections["version"] = data["version"]
    return _convert(sections, CatalogFile, (), locate)


def _convert(value: Any, struct: type[S], path: tuple[str, ...], locate: _Locator) -> S:
    try:
        return msgspec.convert(value, struct)
    except msgspec.ValidationError as exc:
        text, _, where = str(exc).partition(" - at `$")
        sub = tuple(p for p in re.split(r"[.\[\]]", where.rstrip("`")) if p and p != "...")
        raise CatalogError(locate.message(path + sub, _explain(text))) from None


def _explain(msg: str) -> str:
    if msg.startswith("Object contains unknown field `api_key`"):
        return "an API key must not be written in the catalog; name its environment variable in api_key_env"
    return msg


def _refuse_inline_keys(data: dict[str, Any], locate: _Locator) -> None:
    providers = data.get("providers")
    for name, provider in providers.items() if isinstance(providers, dict) else ():
        env_name = provider.get("api_key_env") if isinstance(provider, dict) else None
        if isinstance(env_name, str) and _KEY_LIKE.search(env_name):
            raise CatalogError(
                locate.message(
                    ("providers", str(name), "api_key_env"),
                    "this looks like a key, not the name of an environment variable; "
                    "put the key in the environment and name the variable here",
                )
            )


def _versions_as_text(data: dict[str, Any]) -> None:
    """YAML reads an unquoted ``api_version: 2024-10-21`` as a date; it means the version it spells."""
    providers = data.get("providers")
    for provider in providers.values() if isinstance(providers, dict) else ():
        if isinstance(provider, dict) and isinstance(provider.get("api_version"), datetime.date):
            provider["api_version"] = provider["api_version"].isoformat()


class _Locator:
    """Finds the line of a catalog path in the YAML source, composed only when an error needs it."""

    def __init__(self, text: str, source: str) -> None:
        self._text = text
        self._source = source

    def message(self, path: tuple[str, ...], reason: str) -> str:
        line = self._line(path)
        where = f"{self._source}:{line}" if line else self._source
        dotted = ".".join(path)
        return f"{where}: {dotted}: {reason}" if dotted else f"{where}: {reason}"

    def _line(self, path: tuple[str, ...]) -> int | None:
        try:
            node = yaml.compose(self._text, Loader=_SafeLoader)
        except yaml.YAMLError:
            return None
        line = None
        for part in path:
            if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
                node = node.value[int(part)]
                line = node.start_mark.line + 1
                continue
            if not isinstance(node, yaml.MappingNode):
                break
            for key_node, value_node in node.value:
                if str(key_node.value) == part:
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                break
        if line is None and node is not None:
            line = node.start_mark.line + 1
        return line


__all__ = ["CatalogError", "load_catalog", "parse_catalog"]
