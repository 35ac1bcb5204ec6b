"""The folder tree is the architecture: each layer imports only the layers below it, inside `nas/search/` each
room imports only the rooms below it, and importing the package changes no global setting (the CLI sets those)."""

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
# The rooms of nas/search/ -> the rooms they may import (docs/architecture.md): spec below results and run,
# results never importing run.
ROOMS = {
    "spec": set(),
    "results": {"spec"},
    "run": {"spec", "results"},
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
            packages = ("nas", "nas.search")  # `from nas.search import run` names a room
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module in packages else [node.module]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nas"))
    return found


def _module(path: Path, root: Path = NAS) -> str:
    return ".".join(("nas", *path.relative_to(root).with_suffix("").parts))


def _room(module: str) -> str | None:
    """The room of a nas.search module (spec, results, run); None for one outside nas.search or at its top."""
    parts = module.split(".")
    return parts[2] if parts[:2] == ["nas", "search"] and len(parts) > 2 and parts[2] in ROOMS else None


def _room_violations(root: Path) -> list[str]:
    """Each import in `root`/search (a nas tree) that goes up or sideways between rooms: runtime imports, imports
    inside functions and `if TYPE_CHECKING:` imports alike; and each module of search/ that is in no room."""
    wrong = []
    for path in sorted((root / "search").rglob("*.py")):
        module = _module(path, root)
        room = _room(module)
        if room is None:
            if module != "nas.search.__init__":
                wrong.append(f"{module} is in no room of nas.search ({', '.join(ROOMS)})")
            continue
        for imported in _imports(path):
            other = _room(imported)
            if other is not None and other != room and other not in ROOMS[room]:
                wrong.append(f"{module} ({room}) imports {imported} ({other})")
    return wrong


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


def test_each_room_of_search_imports_only_the_rooms_below_it() -> None:
    assert {p.name for p in (NAS / "search").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ROOMS)
    assert all(any((NAS / "search" / room).glob("*.py")) for room in ROOMS)
    assert _room_violations(NAS) == []


def test_reports_read_what_a_study_holds_never_what_runs() -> None:
    """report/ imports nas.search's spec and results rooms only: a report is drawn from a stored study on any
    machine with nothing running (report/forest.py read the ablation table's columns from run/ablate.py)."""
    reports = sorted((NAS / "report").rglob("*.py"))
    wrong = [f"{_module(p)} imports {i}" for p in reports for i in _imports(p) if _room(i) == "run"]
    assert wrong == []


def test_the_room_check_finds_an_upward_import_of_every_kind(tmp_path: Path) -> None:
    """A room importing upward is found whether it imports at the top, inside a function, or for types only."""
    files = {
        "search/__init__.py": "",
        "search/spec/__init__.py": "",
        "search/spec/a.py": "def f():\n    from nas.search.results import records\n",
        "search/results/__init__.py": "",
        "search/results/b.py": (
            "from typing import TYPE_CHECKING\nfrom nas.search.spec import a\n"
            "if TYPE_CHECKING:\n    from nas.search.run.study import open_study\n"
        ),
        "search/run/__init__.py": "",
        "search/run/c.py": "from nas.search import results, spec\nfrom nas.search.results.b import x\n",
        "search/d.py": "import nas.search.run.c\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _room_violations(tmp_path) == [
        "nas.search.d is in no room of nas.search (spec, results, run)",
        "nas.search.results.b (results) imports nas.search.run.study (run)",
        "nas.search.spec.a (spec) imports nas.search.results (results)",
    ]


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
