"""Imports flow one way: no import cycle among the package's modules, and no upward import.

Every ``import`` statement of every module under ``src/flare_ml`` counts, function-level
ones included (a function-level import hides a cycle from Python, not from this test).
``from package import name`` counts as importing ``package.name`` when that is a module,
and as importing the package's ``__init__`` otherwise (which imports its submodules).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / "flare_ml"

#: layers from the bottom up; a module may import only modules of its own layer or below.
#: (prefix match on the dotted name; the longest matching prefix wins)
LAYERS: list[tuple[str, ...]] = [
    ("flare_ml", "flare_ml.errors", "flare_ml.config_io", "flare_ml.progress"),
    ("flare_ml.decision_policy",),
    ("flare_ml.data",),
    ("flare_ml.reports",),
    ("flare_ml.records", "flare_ml.labels"),
    ("flare_ml.simulate", "flare_ml.cases", "flare_ml.train_config"),
    ("flare_ml.features",),
    ("flare_ml.model_selection", "flare_ml.calibration"),
    ("flare_ml.models", "flare_ml.rules"),
    ("flare_ml.uncertainty", "flare_ml.explain"),
    ("flare_ml.evaluation",),
    ("flare_ml.bundle",),
    ("flare_ml.site_calibration",),
    ("flare_ml.training", "flare_ml.prior", "flare_ml.adaptation"),
    ("flare_ml.plots", "flare_ml.timeline", "flare_ml.serving", "flare_ml.spark"),
    ("flare_ml.tracking",),
    ("flare_ml.report", "flare_ml.model_card"),
    ("flare_ml.experiments",),
    ("flare_ml.workflows",),
    ("flare_ml.cli",),
]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            targets = []
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.append(submodule if submodule in modules else source)
        else:
            continue
        for target in targets:
            # "import a.b.c" binds a, but what it loads is a.b.c (and its parents'
            # __init__, which the parent-before-child rule of the layers covers)
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module -> the package modules it imports (parsed once per session)."""
    modules = _modules()
    return {name: frozenset(_imports(name, path, modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]] | dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the longest prefix that matches ``module``."""
    best, best_len = None, -1
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    if best is None:
        raise KeyError(f"module {module} has no layer in LAYERS; add it")
    return best


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_function_level_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg import b\n    return b\n")
    (package / "b.py").write_text("from pkg.a import f\n")
    modules = {"pkg": package / "__init__.py", "pkg.a": package / "a.py", "pkg.b": package / "b.py"}
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["pkg.a"] == {"pkg.b"}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_imports_flow_one_way(module):
    graph = import_graph()
    upward = sorted(t for t in graph[module] if layer_of(t) > layer_of(module))
    assert not upward, f"{module} (layer {layer_of(module)}) imports higher layers: {upward}"
