"""The `nas` command in tests, two ways.

`nas` runs it as a user does: a real subprocess of this checkout. Each one pays ~3 s of CPU importing torch
(and torch._dynamo, which the first optimizer pulls in) before it does anything, so it is kept for what only a
real process shows: exit statuses, signals, worker processes, nothing printed on stderr by libraries.
`nas_here` runs the same `nas.cli.main.main` in this process, with its own working folder, stdout and stderr,
for tests of what a command prints, refuses and stores; tests beside those run the same commands as real
subprocesses (tests/cli/test_quiet.py, tests/search/run/test_signals.py, tests/search/run/test_storage.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path


def nas(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m nas.cli ARGS` in a real subprocess (with `env` added to this process's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "nas.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def nas_here(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`nas ARGS` in this process: its exit status, stdout and stderr as a subprocess would give them.

    argparse's exits (bad options, --help) become the status; any other exception propagates and fails the test,
    as a traceback would. The working folder and the SIGTERM handler (`nas run` installs one) are restored."""
    from nas.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    here, sigterm = Path.cwd(), signal.getsignal(signal.SIGTERM)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse has written its message already
                code = exit_.code if isinstance(exit_.code, int) else 0
    finally:
        os.chdir(here)
        signal.signal(signal.SIGTERM, sigterm)
    return subprocess.CompletedProcess(["nas", *args], code, out.getvalue(), err.getvalue())
