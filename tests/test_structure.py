"""Imports flow one way (DESIGN.md): between the four packages, and between the modules of the app layer.

Every import counts, also one inside a function: a deferred import hides a cycle, it does not remove it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("biosignals", "therapy_profiles", "generators", "wellness_app")
MAY_IMPORT = {
    "biosignals": set(),
    "generators": set(),
    "therapy_profiles": {"biosignals", "generators"},  # the value types it needs
    "wellness_app": {"biosignals", "therapy_profiles", "generators"},
}


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every project module ``path`` imports (``from wellness_app import x`` names ``x``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] in PACKAGES}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_packages_import_one_way():
    offences = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_modules(path):
                other = name.split(".")[0]
                if other != package and other not in MAY_IMPORT[package]:
                    offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offences, offences


def test_app_layer_modules_form_no_import_cycle():
    modules = {module_name(p): p for p in (ROOT / "wellness_app").rglob("*.py")}
    graph = {name: {m for m in imported_modules(path) if m in modules and m != name and not name.startswith(m + ".")}
             for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for dependency in sorted(graph[name]):
            visit(dependency, path + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
