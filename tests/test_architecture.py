"""Imports point inward only: core <- store <- service <- adapters (api, cli, client,
formats, web)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "detente"

# What each layer may import from detente (besides itself).
ALLOWED = {
    "core": {"errors"},
    "store": {"core", "errors"},
    "service": {"core", "store", "errors"},
    "formats": {"core", "store", "errors"},
    "api": {"core", "store", "service", "formats", "web", "errors"},
    "web": set(),
    "client": {"errors"},
    "demo": {"core", "store", "service", "errors"},
    "cli": {"core", "store", "service", "formats", "api", "client", "demo", "errors"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    layer_depth = len(path.relative_to(SRC).parts) - 1
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > layer_depth:
                    mod = (node.module or "").split(".")[0]
                    found.add(mod if mod else "<package>")
            elif node.module and node.module.startswith("detente."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("detente."):
                    found.add(alias.name.split(".")[1])
    return found


def test_layers_import_inward_only() -> None:
    bad = []
    for layer, allowed in ALLOWED.items():
        for path in (SRC / layer).rglob("*.py"):
            for mod in _imports(path) - allowed - {layer}:
                bad.append(f"{path.relative_to(SRC)} imports detente.{mod}")
    assert not bad, "\n".join(bad)


def test_core_is_pure() -> None:
    """No I/O, no framework in the core."""
    banned = {"sqlite3", "fastapi", "typer", "rich", "httpx", "os", "subprocess", "socket",
              "psycopg", "uvicorn", "pathlib"}
    for path in (SRC / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module.split(".")[0]]
            assert not set(names) & banned, f"{path.name} imports {names}"
