"""The package's import layers (docs/architecture.md): imports run one way, with no circles.

The layers, bottom to top: base -> envs -> registry -> data -> eval -> leaderboard -> baselines
-> suite -> cli. Every import statement of every module (at module level or inside a function)
is read from the source, so that an upward import fails here even where no test happens to run
it; a runtime check then imports every layer below the baselines with torch and the layers above
blocked.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: module-name prefixes of each layer, bottom to top (the longest matching prefix decides)
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "icrl_bench.errors",
            "icrl_bench.values",
            "icrl_bench.provenance",
            "icrl_bench.tasks",
            "icrl_bench.workers",
        ),
    ),
    ("envs", ("icrl_bench.envs",)),
    ("registry", ("icrl_bench.kinds", "icrl_bench.references", "icrl_bench.registry")),
    ("data", ("icrl_bench.data",)),
    # the package facade re-exports the registry and ``evaluate``: it sits with eval
    ("eval", ("icrl_bench.eval", "icrl_bench")),
    ("leaderboard", ("icrl_bench.leaderboard",)),
    ("baselines", ("baselines",)),
    ("suite", ("icrl_bench.workflow", "icrl_bench.suite")),
    ("cli", ("icrl_bench.cli",)),
)
#: function-local imports of project modules that are allowed, each deferring something heavy
DEFERRED = {
    # checkpoints import torch (about 2 s), which evaluating a reference agent never needs
    ("icrl_bench.workflow", "baselines.common.checkpoint"),
}


def layer_of(module: str) -> int:
    """Index of a module's layer (the longest matching prefix)."""
    best, index = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, index = len(p), i
    assert index >= 0, f"{module} is in no layer: add it to LAYERS"
    return index


def modules() -> dict[str, Path]:
    """Every module of the two packages, by dotted name."""
    out = {}
    for pkg in ("icrl_bench", "baselines"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool, bool]]:
    """``(imported project module, line, function-local, type-checking only)`` of a module."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int, bool, bool]] = []

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST, local: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True, typing_only)
            elif isinstance(child, ast.If) and _type_checking(child):
                visit(child, local, True)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    target = resolve(alias.name)
                    if target:
                        found.append((target, child.lineno, local, typing_only))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*up, base] if base else up)
                for alias in child.names:
                    target = resolve(f"{base}.{alias.name}") if base else None
                    if target:
                        found.append((target, child.lineno, local, typing_only))
            else:
                visit(child, local, typing_only)

    visit(tree, False, False)
    return [f for f in found if f[0] != name]


GRAPH = {name: imports(name, path, modules()) for name, path in modules().items()}


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{name}:{line} imports {target} ({LAYERS[layer_of(target)][0]} is above "
        f"{LAYERS[layer_of(name)][0]})"
        for name, edges in GRAPH.items()
        for target, line, _, _ in edges
        if layer_of(target) > layer_of(name)
    ]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_circles() -> None:
    graph = {n: {t for t, _, _, typing_only in e if not typing_only} for n, e in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_function_local_imports_only_defer_heavy_dependencies() -> None:
    local = sorted(
        f"{name}:{line} imports {target} inside a function"
        for name, edges in GRAPH.items()
        for target, line, is_local, typing_only in edges
        if is_local and not typing_only and (name, target) not in DEFERRED
    )
    assert not local, "\n".join(local)


def test_the_library_below_the_baselines_imports_without_torch_or_the_layers_above() -> None:
    """Every module of the layers up to the leaderboard imports in a fresh interpreter where
    torch, the baselines, the suite and the CLI cannot be imported at all."""
    top = next(i for i, (n, _) in enumerate(LAYERS) if n == "leaderboard")
    names = [n for n in GRAPH if layer_of(n) <= top]
    blocked = ["torch", "baselines", "icrl_bench.workflow", "icrl_bench.suite", "icrl_bench.cli"]
    script = f"""
import importlib, importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"blocked: {{name}}")
        return None
sys.meta_path.insert(0, Block())
for name in {names!r}:
    importlib.import_module(name)
print("ok", len({names!r}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok")


#: the kind names, which only the registry, the kinds and the envs may compare against
KIND_NAMES = {"bandit", "grid", "point", "mujoco", "metaworld"}


def test_only_the_registry_and_envs_branch_on_a_family_kind_name() -> None:
    """A comparison with a kind name (``spec.kind == "grid"``, ``kind in ("mujoco", ...)``)
    outside the registry layer and the envs means a family fact lives outside its spec."""
    allowed = ("icrl_bench.registry", "icrl_bench.kinds", "icrl_bench.envs")
    found = []
    for name, path in modules().items():
        if name.startswith(allowed):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            values = [node.left, *node.comparators]
            strings = {
                elt.value
                for v in values
                for elt in (v.elts if isinstance(v, ast.Tuple | ast.List | ast.Set) else [v])
                if isinstance(elt, ast.Constant) and isinstance(elt.value, str)
            }
            if strings & KIND_NAMES:
                found.append(f"{name}:{node.lineno}")
    assert not found, found
