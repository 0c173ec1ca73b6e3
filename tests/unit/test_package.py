"""The package's own promises: a light ``import nas`` with its API behind it, and the
layering rules of the layout (README, "Layout") that a reader can check."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from helpers import ROOT

import nas

PACKAGE = ROOT / "nas"
CORE = ("models", "data", "training", "depth")


def test_import_nas_loads_no_heavy_library_until_a_name_is_used() -> None:
    code = ("import sys, nas; heavy = {'torch', 'optuna', 'ray'} & set(sys.modules); "
            "assert not heavy, heavy; space = nas.load_space('search_spaces/resnet20.yaml'); "
            "assert space.fixed_candidate().block == 'basic'; "
            "assert not {'torch', 'optuna', 'ray'} & set(sys.modules); "
            "assert callable(nas.train) and 'torch' in sys.modules; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_every_api_name_resolves_and_a_typo_is_an_attribute_error() -> None:
    for name in nas.__all__:
        assert getattr(nas, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        nas.trian  # noqa: B018
    # The functions a notebook user calls say what they take and give (Args/Returns).
    import inspect

    for name in ("search", "load_space", "load_candidate", "build_model", "train", "evaluate",
                 "analyze", "compress", "verify_depth", "load_checkpoint", "save_checkpoint",
                 "export"):
        doc = inspect.getdoc(getattr(nas, name)) or ""
        assert "Args:" in doc and "Returns:" in doc, name


def _modules() -> list[tuple[str, ast.Module]]:
    return [(str(p.relative_to(PACKAGE)), ast.parse(p.read_text()))
            for p in sorted(PACKAGE.rglob("*.py"))]


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_layout_keeps_its_layering_rules() -> None:
    for path, tree in _modules():
        imports = _imports(tree)
        lines = len((PACKAGE / path).read_text().splitlines())
        assert lines <= 400, f"{path} has {lines} lines"
        if path.split("/")[0] in CORE:
            bad = {m for m in imports if m.split(".")[0] in ("optuna", "ray", "yaml", "plotly")
                   or m.startswith(("nas.space", "nas.study", "nas.tuning", "nas.report"))}
            assert not bad, f"core module {path} imports {bad}"
        if not path.startswith("tuning/"):
            assert not {m for m in imports if m.split(".")[0] == "ray"}, f"{path} imports Ray"
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                nested = [n.name for n in ast.walk(function) if isinstance(n, ast.ClassDef)]
                assert not nested, f"{path}: {nested} defined inside {function.name}()"


def test_optuna_privates_and_the_fault_variable_each_have_one_home() -> None:
    for path, tree in _modules():
        text = (PACKAGE / path).read_text()
        if path != "study/_optuna.py":
            touched = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                       and node.attr in ("_storage", "_study_id", "_trial_id",
                                         "_get_stale_trial_ids")]
            assert not touched and "optuna.storages._" not in text, path
        if path != "testing/faults.py":
            assert "RESNAS_INJECT_FAULTS" not in text, path


def _module_name(path: str) -> str:
    parts = ["nas", *path[:-3].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module, known: set[str]) -> set[str]:
    """The nas modules a module imports, at its top or inside a function, outside
    ``if TYPE_CHECKING:``; ``from nas.x import y`` counts as nas.x.y where y is a module."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found & known


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): tree for path, tree in _modules()}
    known = set(modules)
    return {name: _runtime_imports(tree, known) - {name} for name, tree in modules.items()}


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as the path that closes it, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (found := walk(target)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start)):
            return found
    return None


def test_no_circle_of_imports_and_each_layer_imports_only_downwards() -> None:
    """Imports inside functions count: a circle that works only by import order is one."""
    graph = _import_graph()
    assert _circle(graph) is None, " -> ".join(_circle(graph) or [])
    for module, imports in graph.items():
        if module.startswith("nas.space"):  # the study builds from the space, never back
            assert not {m for m in imports if m.startswith("nas.study")}, module
        if module == "nas.api" or not module.startswith("nas.cli"):
            assert not {m for m in imports if m.startswith("nas.cli")}, module


def test_the_checker_finds_a_circle_made_inside_a_function() -> None:
    graph = {"nas.a": {"nas.b"}, "nas.b": {"nas.c"}, "nas.c": set()}
    assert _circle(graph) is None
    tree = ast.parse("def later():\n    from nas.a import thing\n")
    graph["nas.c"] = _runtime_imports(tree, set(graph))
    assert _circle(graph) == ["nas.a", "nas.b", "nas.c", "nas.a"]


LIBRARY_LAYERS = ("models", "data", "training", "depth", "space", "study")


def test_library_layers_write_nothing_to_stderr_and_take_no_namespace() -> None:
    """Only the command line prints; a library layer logs, warns or hands a message to the
    search's display, so ``nas.search(progress="quiet")`` stays quiet. And only the
    command line knows argparse: everything else takes typed arguments."""
    for path, tree in _modules():
        text = (PACKAGE / path).read_text()
        if path.split("/")[0] in LIBRARY_LAYERS:
            printed = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                       and isinstance(node.func, ast.Name) and node.func.id == "print"]
            assert not printed, f"{path} prints (lines {printed})"
            assert "sys.stderr" not in text and "sys.__stderr__" not in text, path
        if not path.startswith("cli/"):
            assert "argparse" not in text and "Namespace" not in text, path


def test_test_modules_have_unique_names() -> None:
    """Test folders have no __init__.py: two modules of one name fail a full run's collection."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
