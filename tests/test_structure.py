"""The package's shape, read from its source with ``ast``: no function takes more than 8 parameters
(settings travel as one object, not field by field), and no module of mgnet_cli imports, through
any chain of imports, a module that imports it back."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mgnet_cli"
MOST_PARAMETERS = 8
# The solve side's one long signature, refactored on its own branch (issue 22, point 3)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """Its parameters' names, ``*args`` and ``**kwargs`` included, a method's ``self``/``cls`` not."""
    args = function.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names[1:] if names and names[0] in ("self", "cls") else names


def long_signatures(trees: dict[str, ast.Module]) -> dict[str, int]:
    """``module.function`` (methods as ``module.Class.method``) -> its parameter count, where over the limit."""
    found = {}
    for name, tree in trees.items():
        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    if len(parameters(child)) > MOST_PARAMETERS:
                        found[f"{prefix}.{child.name}"] = len(parameters(child))
                    visit(child, f"{prefix}.{child.name}")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}.{child.name}")
                else:
                    visit(child, prefix)
        visit(tree, name)
    return found


def imported(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The mgnet_cli modules ``name`` imports (at any depth of its code, TYPE_CHECKING blocks
    included: an arrow is an arrow): ``from a.b import c`` is ``a.b.c`` if that is a module, else
    ``a.b``. The packages Python runs on the way (``a/__init__.py``) are not arrows of the design."""
    package = name if any(k.startswith(name + ".") for k in known) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of this module
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports. A module's import of a package it lies in (``cli/help.py``
    reading ``mgnet_cli.cli``'s names) is not an arrow: Python has run that package's ``__init__``
    before the module, whatever the module imports."""
    trees = modules()
    known = set(trees)
    return {name: {target for target in imported(name, tree, known) if not name.startswith(target + ".")}
            for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules, the first repeated at the end), by depth-first search; None if none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once every arrow from it is seen
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_function_takes_more_than_eight_parameters():
    assert long_signatures(modules()) == {}


def test_the_parameter_count_sees_every_kind_of_parameter():
    tree = ast.parse("class A:\n def f(self, a, /, b, *c, d, **e): pass\ndef g(a, b, c, d, e, f, g, h, i): pass")
    method = tree.body[0].body[0]
    assert parameters(method) == ["a", "b", "d", "c", "e"]
    assert long_signatures({"m": tree}) == {"m.g": 9}


def test_no_import_cycle_among_the_modules():
    assert find_cycle(import_graph()) is None


def test_the_cycle_search_finds_a_cycle_and_names_it():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("source, imports", [
    ("from mgnet_cli.data.splits import ImageSet", {"mgnet_cli.data.splits"}),
    ("from mgnet_cli.data import splits", {"mgnet_cli.data.splits"}),
    ("import mgnet_cli.data.splits", {"mgnet_cli.data.splits"}),
    ("from .splits import ImageSet", {"mgnet_cli.data.splits"}),
    ("def later():\n    from mgnet_cli.data.splits import ImageSet", {"mgnet_cli.data.splits"}),
])  # fmt: skip
def test_every_form_of_import_is_an_arrow(source, imports):
    known = {"mgnet_cli", "mgnet_cli.data", "mgnet_cli.data.splits", "mgnet_cli.data.batches"}
    assert imported("mgnet_cli.data.batches", ast.parse(source), known) == imports
