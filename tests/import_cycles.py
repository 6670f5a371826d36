"""Import cycles in a package, found by reading its source (nothing is imported).

Usage: ``python tests/import_cycles.py src/gaussmix``. Prints each cycle and exits 1 if
there is one.

Two graphs are checked:

* modules: an edge for every import of a module of the package, at module level or
  inside a function (a lazy import still closes a circle, only later); importing
  ``a.b.c`` from outside ``a.b`` also runs ``a.b/__init__``, so that is an edge too.
  Imports of a module's own packages (``from . import x`` names the package, already
  running) and imports under ``if TYPE_CHECKING:`` (never run) are left out.
* packages: the same, module-level imports only, with each subpackage one node (a
  top-level module is its own node).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def _module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """(import node, at module level) for each import that can run."""
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    yield from walk(ast.Module(body=[sub], type_ignores=[]), in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, not in_function
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, nested)
    yield from walk(tree, False)


def _inside(module: str, package: str) -> bool:
    """Whether ``package`` is ``module`` or one of the packages that hold it."""
    return module == package or module.startswith(package + ".")


def import_edges(root) -> list[tuple[str, str, bool]]:
    """(importer, imported, at module level) for the imports among the package's modules."""
    root = Path(root)
    modules = _module_names(root)
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        for node, module_level in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    pkg = here.split(".")
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target not in modules or _inside(name, target):
                    continue  # a module's own packages are running before it starts
                edges.append((name, target, module_level))
                # importing a.b.c runs a.b (and a) first, unless the importer is inside it
                parts = target.split(".")
                for i in range(1, len(parts)):
                    parent = ".".join(parts[:i])
                    if parent in modules and not _inside(name, parent):
                        edges.append((name, parent, module_level))
    return edges


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def module_cycles(root) -> list[list[str]]:
    """Cycles among modules, counting every import (module level and lazy)."""
    return _cycles((a, b) for a, b, _ in import_edges(root) if a != b)


def package_cycles(root) -> list[list[str]]:
    """Cycles among subpackages (top-level modules on their own), module-level imports."""
    top = Path(root).name
    packages = {m for m, p in _module_names(Path(root)).items() if p.name == "__init__.py"}

    def group(module):
        head = ".".join(module.split(".")[:2])
        return head if head in packages and head != top else module

    return _cycles((group(a), group(b)) for a, b, level in import_edges(root)
                   if level and group(a) != group(b))


def main(argv=None) -> int:
    root = Path((argv or sys.argv[1:] or ["src/gaussmix"])[0])
    status = 0
    for title, cycles in (("module", module_cycles(root)), ("package", package_cycles(root))):
        for cycle in cycles:
            print(f"{title} cycle: {' <-> '.join(cycle)}")
            status = 1
    if not status:
        print(f"no import cycle in {root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
