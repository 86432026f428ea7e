"""The dependency direction of DESIGN.md, checked on the imports each module makes."""

from __future__ import annotations

import ast
from pathlib import Path

ROUTER = Path(__file__).resolve().parents[2] / "router"

# Each layer may import only the layers listed for it (and itself).
ALLOWED: dict[str, set[str]] = {
    "types": set(),
    "errors": set(),
    "jsonschema": {"errors"},
    "clock": set(),
    "settings": set(),
    "catalog": {"types", "errors"},
    "responses": {"types", "errors", "jsonschema"},
    "store": {"types", "errors", "clock", "settings"},
    "providers": {"types", "errors", "catalog", "clock", "responses"},
    "telemetry": {"types", "errors", "catalog", "clock"},
    "routing": {"types", "errors", "catalog", "clock", "providers", "telemetry"},
    "access": {"types", "errors", "catalog", "clock", "store"},
    "api": {
        "jsonschema",
        "access",
        "types",
        "errors",
        "catalog",
        "clock",
        "settings",
        "providers",
        "routing",
        "telemetry",
        "responses",
        "store",
    },
    "mock": set(),
    "app": {
        "access",
        "types",
        "errors",
        "catalog",
        "clock",
        "settings",
        "providers",
        "routing",
        "telemetry",
        "api",
        "store",
    },
    "cli": {
        "types",
        "errors",
        "catalog",
        "clock",
        "settings",
        "routing",
        "telemetry",
        "mock",
        "access",
        "store",
    },
    "__main__": {"settings", "cli"},
    "__init__": set(),
}
# Third-party libraries that only some layers may touch.
RESTRICTED = {
    "litestar": {"api", "app"},
    "aiohttp": {"providers", "mock"},
    "httpx": set(),
    "granian": {"cli"},
    "redis": {"store"},
}


def _layer(path: Path) -> str:
    parts = path.relative_to(ROUTER).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_layers_import_only_downwards() -> None:
    problems = []
    for path in sorted(ROUTER.rglob("*.py")):
        layer = _layer(path)
        for name in _imports(path):
            top, _, rest = name.partition(".")
            if top == "router" and rest:
                target = rest.split(".")[0]
                if target != layer and target not in ALLOWED[layer]:
                    problems.append(f"{path.relative_to(ROUTER)} imports router.{target}")
            elif top in RESTRICTED and layer not in RESTRICTED[top]:
                problems.append(f"{path.relative_to(ROUTER)} imports {top}")
    assert problems == []


def test_nothing_imports_the_app_module() -> None:
    importers = [p for p in ROUTER.rglob("*.py") if "router.app" in _imports(p)]
    assert importers == []


def test_adapters_do_not_import_each_other() -> None:
    adapters = [p for p in (ROUTER / "providers").glob("*.py") if not p.name.startswith(("_", "base"))]
    for path in adapters:
        others = {f"router.providers.{p.stem}" for p in adapters if p != path}
        assert not (_imports(path) & others), path.name
