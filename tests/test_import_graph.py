"""Dependencies point one way: no import cycle inside convnet, at module or function level.

The graph is read from the source (``ast``), not from a running interpreter, so an import
hidden inside a function counts as much as one at the top of a file; importing ``a.b.c``
also runs ``a`` and ``a.b``'s ``__init__``.  Function-level imports of convnet's own modules
are allowed only where they keep the command line quick to start (``convnet.commands``,
``cli``, ``__main__``); everywhere else only optional or heavy third-party libraries are
imported inside functions.
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "convnet"
#: modules whose functions may import convnet modules: the CLI's command bodies (startup time)
LAZY_OK = ("convnet.commands", "convnet.cli", "convnet.__main__")


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules) -> list[tuple[str, bool]]:
    """``(imported convnet module, inside a function?)`` for every import statement of a module."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names if a.name.split(".")[0] == PACKAGE)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == PACKAGE:
                    for a in child.names:
                        sub = f"{target}.{a.name}"
                        found.append((sub if sub in modules else target, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def _graph():
    modules = _modules()
    edges = {}
    for name, path in modules.items():
        targets = set()
        for target, _ in _imports(name, path, modules):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                targets.add(".".join(parts[:i]))
        edges[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return modules, edges


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycle_inside_convnet():
    _, edges = _graph()
    cycles = _cycles(edges)
    assert not cycles, "import cycles (module- and function-level):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_of_convnet_only_in_the_command_line():
    modules = _modules()
    lazy = sorted(f"{name} -> {target}" for name, path in modules.items() if not name.startswith(LAZY_OK)
                  for target, in_function in _imports(name, path, modules) if in_function)
    assert not lazy, "function-level imports of convnet modules:\n" + "\n".join(lazy)
