"""The folder tree is the architecture: each layer imports only the layers below it, and importing
the package changes no global setting (the CLI sets those)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

NAS = Path(__file__).resolve().parents[1] / "nas"
# Layer -> the layers it may import (docs/architecture.md). The root modules (errors, checks) are below all.
ALLOWED = {
    "root": set(),
    "arch": {"root"},
    "data": {"root"},
    "train": {"root", "arch", "data"},
    "search": {"root", "arch", "data", "train"},
    "report": {"root", "arch", "search"},
    "cli": {"root", "arch", "data", "train", "search", "report"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else "root"


def _imports(path: Path, *, runtime_only: bool = False) -> set[str]:
    """The nas modules a file imports (with `runtime_only`, leaving out `if TYPE_CHECKING:` blocks)."""
    tree = ast.parse(path.read_text())
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nas"):
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "nas" else [node.module]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nas"))
    return found


def _module(path: Path) -> str:
    return ".".join(("nas", *path.relative_to(NAS).with_suffix("").parts))


def test_every_layer_imports_only_the_layers_below_it() -> None:
    modules = sorted(NAS.rglob("*.py"))
    assert len(modules) > 40
    wrong = []
    for path in modules:
        layer = _layer(_module(path))
        for imported in _imports(path):
            other = _layer(imported)
            if other != layer and other not in ALLOWED[layer]:
                wrong.append(f"{_module(path)} ({layer}) imports {imported} ({other})")
    assert wrong == []


def test_no_import_cycle() -> None:
    paths = {_module(p).removesuffix(".__init__"): p for p in NAS.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        targets = set()
        for imported in _imports(path, runtime_only=True):
            while imported and imported not in paths:  # `from nas.x import name` names a module or a symbol
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycles.append([*stack[stack.index(name) :], name])
            return
        if name in done:
            return
        for target in sorted(graph[name]):
            if not target.startswith(f"{name}."):  # a package importing its own modules is no cycle
                visit(target, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_importing_the_package_changes_no_global_setting() -> None:
    modules = sorted(_module(p).removesuffix(".__init__") for p in NAS.rglob("*.py") if p.name != "__main__.py")
    code = (
        "import warnings, optuna, pandas, plotly, torch, torchvision  # libraries set their own filters on import\n"
        "filters, level = list(warnings.filters), optuna.logging.get_verbosity()\n"
        "import importlib\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "assert list(warnings.filters) == filters, 'warning filters changed'\n"
        "assert optuna.logging.get_verbosity() == level, 'optuna verbosity changed'\n"
        "print(len(" + repr(modules) + "))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == len(modules)
