"""The `nas` command line. Every user error ends in one clear line and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any, NoReturn

from nas.cli.arch import add_arch_command
from nas.cli.final import add_final_commands
from nas.cli.proxies import add_proxies_command
from nas.cli.study import add_study_commands
from nas.cli.train import add_train_commands
from nas.errors import UsageError

USAGE_EXIT = 2  # a user error, as argparse exits for a bad option
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports Ctrl-C


def configure_libraries() -> None:
    """Process-wide library settings: the command line owns them, no import of nas sets them."""
    import optuna  # here, not at the top: the parser itself needs no optuna

    # Optuna marks the heartbeat and its retry callback experimental; users need not hear it each run.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used", category=UserWarning)
    # fvcore (imported to count a torchvision baseline's FLOPs) scripts its losses with torch.jit on import,
    # which torch now calls deprecated: a notice about fvcore's code that users can do nothing about.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our progress lines say what happened


class StdoutMayClose:
    """Standard output that its reader may close (`nas status | head -1`): once the pipe is gone, the rest goes to
    /dev/null, so a command that reads ends quietly with exit 0 and `nas run` keeps training (its progress lines are
    dropped, never the search)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        """Point the stream's file descriptor at /dev/null: what it still holds, and the interpreter's last flush,
        go there instead of raising again."""
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError, AttributeError):  # a stream without a descriptor (a test's StringIO)
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self._stream, name)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option ends in one line (`nas run: error: ...`), as every other mistake does;
    `--help` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="nas", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of every error")
    sub = parser.add_subparsers(dest="command", required=True)
    add_arch_command(sub)
    add_train_commands(sub)
    add_study_commands(sub)
    add_final_commands(sub)
    add_proxies_command(sub)
    return parser


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("Original Traceback") for line in lines):
        # A DataLoader worker's error, re-raised here with the worker's traceback in its message: the
        # traceback's last line ("module.Error: what") is the message.
        return lines[-1].split(": ", 1)[-1]
    return " ".join(lines)


def _os_problem(err: OSError) -> str | None:
    """What went wrong with a file or folder, or None for an OSError that names none (a bug)."""
    if err.filename is None:
        if err.errno is not None and err.strerror:  # a full disk, a closed pipe: the machine, not the code
            return err.strerror
        # DataNotFoundError (a FileNotFoundError) says which dataset is missing in its message.
        return str(err) if isinstance(err, FileNotFoundError) and str(err) else None
    names = f"{err.filename} -> {err.filename2}" if err.filename2 is not None else str(err.filename)
    return f"{names}: {err.strerror or type(err).__name__}"


def _storage_problem(err: Exception) -> str:
    cause = err.__cause__ or err.__context__
    why = f" ({type(cause).__name__}: {_one_line(str(cause))})" if cause is not None else ""
    return f"the study storage failed: {_one_line(str(err))}{why}"


def main(argv: list[str] | None = None) -> int:
    configure_libraries()
    if not isinstance(sys.stdout, StdoutMayClose):
        sys.stdout = StdoutMayClose(sys.stdout)
    args = build_parser().parse_args(argv)
    if args.debug:
        return int(args.func(args))  # every exception keeps its traceback
    import optuna

    def fail(message: str) -> int:
        print(f"nas {args.command}: error: {_one_line(message)}", file=sys.stderr)
        return USAGE_EXIT

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except UsageError as err:
        return fail(str(err))
    except OSError as err:  # FileNotFoundError, PermissionError, IsADirectoryError, ...
        problem = _os_problem(err)
        if problem is None:
            raise
        return fail(problem)
    except optuna.exceptions.StorageInternalError as err:
        return fail(_storage_problem(err))
