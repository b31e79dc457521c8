"""The import graph of the drivestack packages is one-way and cycle-free.

Imports are read from the source with `ast`, nothing is imported: module-level imports, imports inside functions
and methods, under `if TYPE_CHECKING:`, relative imports, `from pkg import name` where `name` is a submodule, and
`importlib.import_module("literal")`. Each resolves to a project module (a `.py` file, or a package's `__init__`).

Importing `x.y.z` runs `x/__init__.py` and `x/y/__init__.py` first, so it is also an edge to each of those packages,
except the importer's own enclosing packages: they have already begun executing when the importer runs.

Layers, bottom to top: `scenes` < the stages (perception, forecasting, depth, scenegen) < `pipelines` < `benchmarks`.
A package may import its own layer's packages and the layers below it, never a layer above.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
PACKAGES: Final = ("scenes", "perception", "forecasting", "depth", "scenegen", "pipelines", "benchmarks")
STAGES: Final = ("perception", "forecasting", "depth", "scenegen")
# package -> the packages above it, which it must not import
FORBIDDEN: Final[Mapping[str, frozenset[str]]] = {
    "scenes": frozenset({*STAGES, "pipelines", "benchmarks"}),
    **{stage: frozenset({"pipelines", "benchmarks"}) for stage in STAGES},
    "pipelines": frozenset({"benchmarks"}),
}


@dataclass(frozen=True)
class Import:
    """`importer` imports project module `target` at `path`:`line` (`target` is None when nothing matches it)."""

    importer: str
    target: str | None
    name: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


@dataclass(frozen=True)
class Source:
    module: str
    path: Path
    is_package: bool


def discover(root: Path, packages: tuple[str, ...]) -> tuple[list[Source], frozenset[str]]:
    """The `.py` files under `packages` as modules, and every module name (namespace-package folders included)."""
    sources = []
    names: set[str] = set()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            module = ".".join(parts[:-1] if is_package else parts)
            sources.append(Source(module, path, is_package))
            names.update(".".join(parts[:end]) for end in range(1, len(parts)))
            names.add(module)
    return sources, frozenset(names)


def _absolute_base(source: Source, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    parts = source.module.split(".")
    package = parts if source.is_package else parts[:-1]
    if node.level - 1 > len(package) - 1:
        raise ValueError(f"{source.path}: line {node.lineno}: relative import beyond the top-level package")
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _imported_names(source: Source, node: ast.AST, modules: Set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _absolute_base(source, node)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            yield submodule if submodule in modules else base
    elif isinstance(node, ast.Call) and node.args:
        function = node.func
        called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        argument = node.args[0]
        if called in ("import_module", "__import__") and isinstance(argument, ast.Constant):
            if isinstance(argument.value, str) and not argument.value.startswith("."):
                yield argument.value


def collect_imports(source: Source, modules: Set[str], packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    """Every import of a project module in `source`, each with the package `__init__`s it runs first."""
    tree = ast.parse(source.path.read_text(encoding="utf-8"), filename=str(source.path))
    parts = source.module.split(".")
    enclosing = {".".join(parts[:end]) for end in range(1, len(parts) + (1 if source.is_package else 0))}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Call)):
            continue
        for name in _imported_names(source, node, modules):
            if name.partition(".")[0] not in packages:
                continue
            if name not in modules:
                found.append(Import(source.module, None, name, source.path, node.lineno))
                continue
            name_parts = name.split(".")
            for end in range(1, len(name_parts) + 1):
                target = ".".join(name_parts[:end])
                if target != source.module and (target == name or target not in enclosing):
                    found.append(Import(source.module, target, name, source.path, node.lineno))
    return found


def find_cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """Shortest cycles of `graph` as [a, b, ..., a], together through every module of each strongly connected group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        covered: set[str] = set()
        for node in sorted(component):
            if node not in covered:
                cycles.append(_shortest_cycle(graph, component, node))
                covered.update(cycles[-1])
    return sorted(cycles)


def _shortest_cycle(graph: Mapping[str, Set[str]], component: set[str], start: str) -> list[str]:
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in sorted(graph.get(node, ())):
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor in component and successor not in previous:
                previous[successor] = node
                queue.append(successor)
    raise AssertionError(f"no cycle through {start} in its strongly connected component")


@pytest.fixture(scope="module")
def project_imports() -> list[Import]:
    sources, modules = discover(REPO_ROOT, PACKAGES)
    return [found for source in sources for found in collect_imports(source, modules)]


def test_cycle_finder_reports_a_known_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"e"}, "f": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"], ["c", "a", "c"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_collector_sees_nested_conditional_relative_and_submodule_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "b.py", "c.py", "sub/__init__.py", "sub/d.py"):
        (package / name).write_text("", encoding="utf-8")
    (package / "sub" / "e.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.a import thing\n"
        "def f():\n"
        "    from ..b import other\n"
        "from pkg import c\n"
        "from . import d\n",
        encoding="utf-8",
    )
    sources, modules = discover(tmp_path, ("pkg",))
    (source,) = (source for source in sources if source.module == "pkg.sub.e")
    edges = {(found.target, found.line) for found in collect_imports(source, modules, ("pkg",))}
    assert edges == {("pkg.a", 4), ("pkg.b", 6), ("pkg.c", 7), ("pkg.sub.d", 8)}


def test_every_project_import_resolves(project_imports: list[Import]) -> None:
    unresolved = list(dict.fromkeys(f"{found.where()}: {found.name}" for found in project_imports if found.target is None))
    assert not unresolved, "imports of project modules that do not exist:\n" + "\n".join(unresolved)


def test_no_import_cycles(project_imports: list[Import]) -> None:
    graph: dict[str, set[str]] = {}
    for found in project_imports:
        if found.target is not None:
            graph.setdefault(found.importer, set()).add(found.target)
    cycles = [" -> ".join(cycle) for cycle in find_cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_packages_import_only_their_own_layer_and_below(project_imports: list[Import]) -> None:
    violations = []
    for found in project_imports:
        if found.target != found.name:  # unresolved, or a package `__init__` run on the way to the named module
            continue
        importer, target = found.importer.partition(".")[0], found.target.partition(".")[0]
        if target in FORBIDDEN.get(importer, frozenset()):
            violations.append(f"{found.where()}: {found.importer} imports {found.target} ({importer} is below {target})")
    assert not violations, "layering violations:\n" + "\n".join(dict.fromkeys(violations))
