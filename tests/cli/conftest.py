"""The `nas` command run as a user runs it: a real subprocess of this checkout."""

from __future__ import annotations

import subprocess
import sys


def nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, timeout=120)
