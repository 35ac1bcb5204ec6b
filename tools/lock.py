"""Write requirements.lock: the exact version of every package `make demo`, `make test` and CI install.

pyproject.toml keeps ranges (for people installing densenas into their own environment); this resolves
those ranges, dev extras included, in a fresh virtual environment with pip's own resolver and the
machine's pip settings (so torch and torchvision come as the local index serves them), and writes every
package it would install, direct and transitive, as `name==version`. Nothing is installed.

Usage: `make lock` (or `python3 tools/lock.py [--output PATH]`), then `make clean test` and re-check
nas/search/results/optuna_internals.py if the lock moved Optuna (README, "Refreshing the lock").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resolve(root: Path) -> list[tuple[str, str]]:
    """(name, version) of every package pip would install for `root[dev]` into an empty environment."""
    with tempfile.TemporaryDirectory(prefix="densenas-lock-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.create(env_dir, with_pip=True)
        report = Path(tmp) / "report.json"
        command = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "--dry-run"]
        command += ["--ignore-installed", "--report", str(report), f"{root}[dev]"]
        subprocess.run(command, check=True)
        install = json.loads(report.read_text())["install"]
    own = "densenas"
    pins = {(item["metadata"]["name"], item["metadata"]["version"]) for item in install}
    return sorted(((name, version) for name, version in pins if name.lower() != own), key=lambda pin: pin[0].lower())


def lock_text(pins: list[tuple[str, str]]) -> str:
    header = [
        "# The exact versions `make demo`, `make test` and CI install (pip -c requirements.lock).",
        "# Made by `make lock` (tools/lock.py) from pyproject.toml's ranges, dev extras included, on",
        f"# Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{datetime.date.today().isoformat()}. Do not edit by hand: change pyproject.toml, run `make lock`,",
        "# then `make clean test` (README, 'Refreshing the lock').",
    ]
    return "\n".join([*header, *(f"{name}=={version}" for name, version in pins)]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "requirements.lock")
    args = parser.parse_args()
    pins = resolve(ROOT)
    partial = args.output.with_name(args.output.name + ".partial")
    partial.write_text(lock_text(pins))
    os.replace(partial, args.output)
    print(f"{args.output}: {len(pins)} packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
