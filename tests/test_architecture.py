"""The layers of docs/architecture.md, checked on the source: which package may import which,
and no import cycle. Every import counts, at the top of a module or inside a function (a
lazy import is still an arrow), read with `ast` without importing anything.

    config/     imports nothing of the project
    models/     imports only config
    services/   never imports handlers, bot, scheduler, webapp or telegram
    handlers/   never imports scheduler (timers are reached through context.timers), nor
                SQL: every transaction is a service's
    scheduler/  never imports handlers or webapp: its timers call services
    no cycle among the packages, and none among the modules of services/
    nothing registered (jobs, hooks, renderers, handlers) by importing a module
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "models", "services", "handlers", "scheduler", "bot", "webapp")
# May a package import another? Everything not listed here is allowed.
FORBIDDEN = {
    "config": {p for p in PACKAGES if p != "config"} | {"emulator"},
    "services": {"handlers", "bot", "scheduler", "webapp", "telegram"},
    "handlers": {"scheduler", "sqlmodel", "sqlalchemy"},
    "scheduler": {"handlers", "webapp"},
    "models": {"services", "handlers", "scheduler", "bot", "webapp", "telegram"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module name `path` imports (absolute), with its line; `from a import b` gives
    `a.b` when that is a module of ours, else `a`."""
    modules = _modules()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in modules else base), node.lineno


def _ours(name: str) -> str | None:
    """The module of ours `name` refers to (its longest known prefix), else None."""
    modules = _modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported module of ours: first line}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in _modules().items():
        edges: dict[str, int] = {}
        for name, line in _imported(module, path):
            target = _ours(name)
            if target is not None and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_package_imports_a_layer_above_it() -> None:
    wrong = []
    for module, path in _modules().items():
        package = module.split(".")[0]
        banned = FORBIDDEN.get(package, set())
        for name, line in _imported(module, path):
            top = name.split(".")[0]
            if top in banned:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert wrong == []


def test_no_import_cycle_among_the_packages() -> None:
    packages: dict[str, set[str]] = {}
    for module, edges in _graph().items():
        source = module.split(".")[0]
        for target in edges:
            if target.split(".")[0] != source:
                packages.setdefault(source, set()).add(target.split(".")[0])
    assert _cycles(packages) == []


def test_no_import_cycle_within_services() -> None:
    inside = {
        module: {t for t in edges if t.split(".")[0] == "services"}
        for module, edges in _graph().items()
        if module.split(".")[0] == "services"
    }
    # A package's __init__ re-exporting its modules is not an arrow back to it.
    for module, targets in inside.items():
        targets.discard(module.rpartition(".")[0])
    assert _cycles(inside) == []


def test_nothing_is_registered_or_imported_for_its_side_effect() -> None:
    """Jobs, hooks and renderers are registered in the composition root (bot/app.py:
    register_handlers, register_hooks, start_timers), never by a decorator or a call at a
    module's top level, and no module is imported only for what importing it does."""
    registrations = (
        "on_startup",
        "add_outcome_hook",
        "register_renderer",
        "add_handler",
        "listens_for",
        "listen",
    )
    wrong = []
    for module, path in _modules().items():
        source = path.read_text(encoding="utf-8")
        for number, text in enumerate(source.splitlines(), 1):
            if "noqa: F401" in text and module != "models":
                wrong.append(f"{path.relative_to(ROOT)}:{number} imports for a side effect")
        for node in ast.parse(source).body:
            decorators = getattr(node, "decorator_list", [])
            calls = list(decorators)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                calls.append(node.value)
            for call in calls:
                func = call.func if isinstance(call, ast.Call) else call
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in registrations:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} registers {name}")
    assert wrong == []
