"""The package's layers, read from the source with ``ast`` (issue 14).

- No import cycle among hwprofile/ and exporters/ modules, counting every import statement
  wherever it stands (inside functions, under ``if TYPE_CHECKING``) and every
  ``heavy("hwprofile.x")`` call.
- Only hwprofile/cli/ (and ``hwprofile/__main__``) imports hwprofile.cli: the library never
  imports rendering.
- exporters/ imports only hwprofile's science modules, never the package facade or the sweep.
- No import inside a function (except the facade's ``run``, ``check`` and ``calibrate_gate``,
  which load the sweep and the gate session when called: those reach exporters/, whose imports of
  the science modules run the facade first): hwprofile's own modules and light libraries at the
  top; heavy third-party libraries (and hwprofile.models, whose networks need torch) only through
  ``hwprofile._lazy.heavy`` with a literal name, never at module level.
- Every module imports on its own in a fresh interpreter (import order cannot matter).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from hwprofile._lazy import HEAVY

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hwprofile", "exporters")
#: modules exporters/ may import: the science layer and leaf utilities
SCIENCE = {"hwprofile.specs", "hwprofile.zoo", "hwprofile.scaling", "hwprofile.regnet", "hwprofile.complexity",
           "hwprofile.onnx_complexity", "hwprofile.onnx_graph", "hwprofile.models", "hwprofile.errors",
           "hwprofile.atomic", "hwprofile._version", "hwprofile._lazy"}
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
    """Each module first in a clean interpreter state: a cycle hidden by import order fails here."""
    names = sorted(m for m in MODULES if not m.startswith(HEAVY_MODULES) and m != "hwprofile.__main__")
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


#: The layers of docs/api.md ("How the package is layered"): a module imports only its own layer and lower
#: numbers. Prefixes name packages; the longest matching prefix decides.
LAYERS = {
    "hwprofile._lazy": 0, "hwprofile._version": 0, "hwprofile.errors": 0, "hwprofile.atomic": 0,
    "hwprofile.bounds": 0, "hwprofile.lifetime": 0, "hwprofile.locks": 0,
    "hwprofile.specs": 1, "hwprofile.regnet": 1, "hwprofile.zoo": 1, "hwprofile.scaling": 1, "hwprofile.complexity": 1,
    "hwprofile.onnx_graph": 1, "hwprofile.onnx_complexity": 1, "hwprofile.models": 1, "hwprofile.timm_models": 1,
    "exporters": 1.5,
    "hwprofile.datatypes": 2, "hwprofile.profile": 2, "hwprofile.schema": 2, "hwprofile.measure": 2,
    "hwprofile.layer_file": 2, "hwprofile.measure.records": 2, "hwprofile.measure.stats": 2,
    "hwprofile.runners": 3, "hwprofile.measure.core": 3, "hwprofile.measure.isolation": 3,
    "hwprofile.measure.child": 3, "hwprofile.measure.fingerprint": 3, "hwprofile.measure.peaks": 3,
    "hwprofile.measure.memory": 3, "hwprofile.measure.timing": 3, "hwprofile.measure.forkserver": 3,
    "hwprofile.measure.energy": 3, "hwprofile.measure.clocks": 3,
    "hwprofile.layer_join": 3, "hwprofile.quality": 3,
    "hwprofile.analysis": 4, "hwprofile.comparability": 4, "hwprofile.compare": 4, "hwprofile.layers": 4,
    "hwprofile.roofline": 4, "hwprofile.plot": 4, "hwprofile.fitting": 4, "hwprofile.predict": 4,
    "hwprofile.merge": 4, "hwprofile.regression": 4, "hwprofile.design": 4, "hwprofile.contrast": 4,
    "hwprofile.power": 4, "hwprofile.table_import": 4, "hwprofile.gate": 4, "hwprofile.pooling": 4,
    "hwprofile.gate_calibration": 4, "hwprofile.outputs": 4, "hwprofile.summary": 4,
    FACADE: 4.5,
    "hwprofile.sweep_config": 5, "hwprofile.sweep": 5, "hwprofile.sweep_plan": 5, "hwprofile.sweep_decide": 5,
    "hwprofile.executors": 5,
    "hwprofile.gate_measure": 5, "hwprofile.gate_session": 5,
    "hwprofile.cli": 6, "hwprofile.__main__": 6,
}
#: the facade's own run / check / calibrate_gate, which load layer 5 when called (see the module docstring)
FACADE_CALLS = {"hwprofile.sweep", "hwprofile.gate_session"}


def _layer(module: str) -> float:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in LAYERS:
            return LAYERS[".".join(parts[:i])]
    raise KeyError(module)


def test_every_module_has_a_layer():
    missing = []
    for m in MODULES:
        try:
            _layer(m)
        except KeyError:
            missing.append(m)
    assert not missing, f"give these modules a layer in LAYERS and docs/api.md: {missing}"


def test_layers_point_one_way():
    up = [f"{_where(m, t)}: {m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
          for m, edges in GRAPH.items() for t in edges
          if _layer(t) > _layer(m) and not (m == FACADE and t in FACADE_CALLS)]
    assert not up, up
