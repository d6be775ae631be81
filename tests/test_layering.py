"""The package's layers, read from the source with ``ast`` (issues 14 and 21).

- Concepts by package: each of hwprofile's packages has a layer (:data:`LAYERS`, the table of docs/api.md), and
  an import between two packages points to a lower layer: no cycle between packages, none between modules
  (counting every import statement wherever it stands, inside functions and under ``if TYPE_CHECKING``, and every
  ``heavy("hwprofile.x")`` call).
- A package's ``__init__`` is its API and its ``_modules`` are private: no module imports another package's
  private module, no module imports its own package's ``__init__``, and an ``__init__`` imports only its own
  modules and lists in ``__all__`` exactly what it imports.
- Only hwprofile/cli/ (and ``hwprofile/__main__``) imports hwprofile.cli: the library never imports rendering.
- exporters/ imports only hwprofile's science packages, never the package facade or the sweep.
- No import inside a function (except the facade's ``build_model``, ``run``, ``check`` and ``calibrate_gate``):
  hwprofile's own modules and light libraries at the top; heavy third-party libraries (and hwprofile.models,
  whose networks need torch) only through ``hwprofile._lazy.heavy`` with a literal name, never at module level.
- Every module imports on its own in a fresh interpreter (import order cannot matter).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hwprofile._lazy import HEAVY

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hwprofile", "exporters")
#: what exporters/ may import: the science packages and leaf utilities
SCIENCE = {"hwprofile.zoo", "hwprofile.graph", "hwprofile.models", "hwprofile.errors", "hwprofile.atomic",
           "hwprofile._version", "hwprofile._lazy"}
#: modules that are themselves heavy (defining them needs torch)
HEAVY_MODULES = ("hwprofile.models",)
FACADE = "hwprofile"


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _project(name: str) -> str | None:
    """The project module ``name`` names (the longest known prefix), or None for a third-party one."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in MODULES:
            return ".".join(parts[:i])
    return None


def _heavy_literal(call: ast.AST) -> str | None:
    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "heavy"
            and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
        return call.args[0].value
    return None


def _targets(module: str, node: ast.AST) -> list[str]:
    """The project modules one import statement (or heavy() call) imports."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = _absolute(module, node)
        for a in node.names:
            sub = f"{base}.{a.name}"
            names.append(sub if sub in MODULES else base)
    elif (lit := _heavy_literal(node)) is not None:
        names = [lit]
    return [t for t in (_project(n) for n in names) if t and t != module]


def _function_nodes(tree: ast.AST) -> set[int]:
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(n) for n in ast.walk(fn) if n is not fn)
    return inside


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first statement}"""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _targets(module, node):
                edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


GRAPH = _graph()


def _find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, {})):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def _where(a: str, b: str) -> str:
    return f"{MODULES[a].relative_to(ROOT)}:{GRAPH[a][b]}"


def test_no_import_cycle_counting_every_import_statement():
    cycle = _find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle) + " (" + ", ".join(
        _where(a, b) for a, b in zip(cycle, cycle[1:])) + ")"


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_only_the_cli_imports_the_cli():
    bad = [_where(m, t) for m, edges in GRAPH.items() for t in edges
           if (t == "hwprofile.cli" or t.startswith("hwprofile.cli."))
           and not (m.startswith("hwprofile.cli") or m == "hwprofile.__main__")]
    assert not bad, f"the library imports the CLI layer at {bad}"


def test_only_the_cli_imports_the_facade():
    """The CLI is a client of the public API (``hwprofile check`` calls ``hwprofile.check``); the library
    and exporters/ import the module that defines a name, never the facade."""
    bad = [_where(m, FACADE) for m, edges in GRAPH.items()
           if FACADE in edges and not (m.startswith("hwprofile.cli") or m == "hwprofile.__main__")]
    assert not bad, f"import the module that defines the name, not the hwprofile facade: {bad}"


def test_exporters_depend_only_on_the_science_modules():
    bad = {f"{m} -> {t}" for m, edges in GRAPH.items() if m.split(".")[0] == "exporters"
           for t in edges if t.split(".")[0] == "hwprofile" and t not in SCIENCE}
    assert not bad, sorted(bad)


@pytest.mark.slow
def test_no_import_inside_a_function_and_heavy_libraries_only_through_the_helper():
    inner, top_heavy = [], []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        in_fn = _function_nodes(tree)
        type_checking = {id(n) for node in tree.body if isinstance(node, ast.If)
                         and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                         for n in ast.walk(node)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if id(node) in in_fn and module != FACADE:
                inner.append(where)
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [_absolute(module, node)])
            heavy = [n for n in names if n.split(".")[0] in HEAVY or n.startswith(HEAVY_MODULES)]
            if heavy and id(node) not in type_checking and not module.startswith(HEAVY_MODULES):
                top_heavy.append(where)
    assert not inner, f"import at the top of the module (or heavy() for a heavy library): {inner}"
    assert not top_heavy, f"heavy libraries only through hwprofile._lazy.heavy: {top_heavy}"


def test_heavy_names_are_literals_of_known_libraries():
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "heavy":
                lit = _heavy_literal(node)
                assert lit and lit.split(".")[0] in HEAVY or (lit or "").startswith(HEAVY_MODULES), \
                    f"{path.relative_to(ROOT)}:{node.lineno}"


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """Each package, top-level module and CLI module first in a clean interpreter state: a cycle hidden by import
    order fails here. (A package's private module cannot be imported before its package, whose ``__init__``
    imports every one of them: importing the package first is importing each of them first.)"""
    names = sorted(m for m in MODULES if not m.startswith(HEAVY_MODULES) and m != "hwprofile.__main__"
                   and (not _private(m) or m.startswith("hwprofile.cli")))
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for m in [m for m in sys.modules if m.split('.')[0] in ('hwprofile', 'exporters')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", out.stdout


@pytest.mark.parametrize("statement", ["import hwprofile", "import exporters",
                                       "import hwprofile.cli; hwprofile.cli.build_parser()"])
def test_importing_the_package_imports_no_heavy_library(statement):
    code = (f"import sys; {statement}; "
            f"print(sorted(m for m in {sorted(set(HEAVY) - set(HEAVY_MODULES))!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


#: The layers of docs/api.md ("How the package is layered"), lowest first: an import between two packages points
#: to a strictly lower layer. The leaves are hwprofile's top-level modules; the facade is ``hwprofile`` itself.
LAYERS = {
    "leaves": 0,
    "hwprofile.zoo": 1,
    "hwprofile.graph": 2,
    "hwprofile.models": 3,
    "exporters": 4,
    "hwprofile.profile": 5,
    "hwprofile.trackers": 6,
    "hwprofile.runners": 7,
    "hwprofile.measure": 8,
    "hwprofile.analysis": 9,
    "hwprofile.sweep": 10,
    "hwprofile.fleet": 11,
    "hwprofile.gate": 11,
    "hwprofile.report": 12,
    FACADE: 13,
    "hwprofile.cli": 14,
}
SUBPACKAGES = sorted(p for p in LAYERS if p.startswith("hwprofile."))


def _package(module: str) -> str:
    """The package a module belongs to: a key of LAYERS ("leaves" for hwprofile's top-level modules)."""
    if module.split(".")[0] == "exporters":
        return "exporters"
    if module == FACADE:
        return FACADE
    if module == "hwprofile.__main__":
        return "hwprofile.cli"
    top = ".".join(module.split(".")[:2])
    return top if top in LAYERS else "leaves"


def _private(module: str) -> bool:
    """Whether ``module`` is a package's private module (a ``_name`` below a subpackage)."""
    return module.startswith(tuple(p + "." for p in SUBPACKAGES)) and any(
        part.startswith("_") for part in module.split(".")[2:])


def test_every_package_has_a_layer_and_every_module_a_package():
    packages = {p for p, path in MODULES.items() if path.name == "__init__.py" and p.count(".") == 1}
    assert packages == set(SUBPACKAGES), "give each package a layer in LAYERS and docs/api.md"
    leaves = sorted(m for m in MODULES if _package(m) == "leaves")
    assert all(m.count(".") == 1 and not _is_package(m) for m in leaves), leaves


def test_packages_import_only_lower_layers():
    up = [f"{_where(m, t)}: {m} ({_package(m)}, layer {LAYERS[_package(m)]}) imports {t} ({_package(t)}, layer "
          f"{LAYERS[_package(t)]})"
          for m, edges in GRAPH.items() for t in edges
          if _package(t) != _package(m) and LAYERS[_package(t)] >= LAYERS[_package(m)]
          and not (m == FACADE and _package(t) in ("hwprofile.sweep", "hwprofile.gate"))]
    assert not up, up


def test_no_module_imports_another_packages_private_module():
    bad = [f"{_where(m, t)}: {m} imports {t}" for m, edges in GRAPH.items() for t in edges
           if _private(t) and _package(t) != _package(m)]
    assert not bad, f"import the package (its __init__ is its API): {bad}"


def test_no_module_imports_its_own_package():
    """Inside a package, modules import their siblings: the package's __init__ may still be loading."""
    bad = [_where(m, t) for m, edges in GRAPH.items() for t in edges
           if t in SUBPACKAGES and _package(m) == t and m not in (t, "hwprofile.__main__")]
    assert not bad, bad


@pytest.mark.parametrize("package", [p for p in SUBPACKAGES if p != "hwprofile.cli"])
def test_an_init_imports_its_own_modules_and_exports_them(package):
    tree = ast.parse(MODULES[package].read_text())
    imported, exported = set(), None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            # its private modules, or (trackers) its public submodules by name
            assert node.module and (node.module.startswith(package + ".") or node.module == package and all(
                f"{package}.{a.name}" in MODULES for a in node.names)), f"{package}: imports {node.module}"
            imported |= {a.asname or a.name for a in node.names}
        elif isinstance(node, (ast.Import,)):
            pytest.fail(f"{package}: plain import in __init__")
        elif isinstance(node, ast.Assign) and any(isinstance(x, ast.Name) and x.id == "__all__" for x in node.targets):
            exported = set(ast.literal_eval(node.value))
    assert exported == imported, package


def test_docs_api_lists_the_layers():
    """docs/api.md's table of packages is LAYERS, in order."""
    text = (ROOT / "docs" / "api.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `([\w.]+)`", text, flags=re.M)
    assert [(int(n), name) for n, name in rows] == [(n, p) for p, n in LAYERS.items() if p != "leaves"], rows


#: packages that read (profiles, records, reports) and what a reading module never imports: the measuring packages,
#: process control and the libraries that run a network or read the machine
READING = ("hwprofile.profile", "hwprofile.analysis", "hwprofile.report")
MEASURING = ("hwprofile.measure", "hwprofile.trackers", "subprocess", "multiprocessing", "psutil", "pynvml", "torch",
             "onnxruntime", "tensorrt", "ray")


def _imported_names(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.module, node.lineno)] + [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
        elif (lit := _heavy_literal(node)) is not None:
            found.append((lit, node.lineno))
    return found


def test_reading_modules_never_measure():
    bad = [f"{path.relative_to(ROOT)}:{line}: {name}" for module, path in MODULES.items()
           if _package(module) in READING for name, line in _imported_names(path)
           if name == MEASURING or name.startswith(tuple(m + "." for m in MEASURING)) or name in MEASURING]
    assert not bad, bad
