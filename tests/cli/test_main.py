"""nas/cli/main.py: which exceptions end in one line (and with which status) and which keep their traceback."""

from __future__ import annotations

import argparse
import errno
import warnings
from collections.abc import Iterator

import optuna
import pytest

import nas.cli.arch
from nas.cli import main
from nas.errors import UsageError


@pytest.fixture(autouse=True)
def _library_settings() -> Iterator[None]:
    """main() sets process-wide warning filters and optuna's verbosity: undo them after each test."""
    verbosity = optuna.logging.get_verbosity()
    with warnings.catch_warnings():
        yield
    optuna.logging.set_verbosity(verbosity)


def run_raising(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException, *, debug: bool = False
) -> tuple[int, str]:
    """main() with `nas arch` replaced by a command that raises `exc`: (status, stderr)."""

    def command(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(nas.cli.arch, "cmd_arch", command)
    code = main(["--debug", "arch"] if debug else ["arch"])
    return code, capsys.readouterr().err


ONE_LINE: list[tuple[BaseException, int, str]] = [
    (UsageError("bad --thing", owner="--thing"), 2, "nas arch: error: bad --thing\n"),
    (UsageError("first line\n  second line"), 2, "nas arch: error: first line second line\n"),
    (KeyboardInterrupt(), 130, "nas arch: interrupted\n"),
    (
        FileNotFoundError(errno.ENOENT, "No such file or directory", "runs/x.csv"),
        2,
        "nas arch: error: runs/x.csv: No such file or directory\n",
    ),
    (
        PermissionError(errno.EACCES, "Permission denied", "/root/out"),
        2,
        "nas arch: error: /root/out: Permission denied\n",
    ),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "reports"), 2, "nas arch: error: reports: Is a directory\n"),
    (OSError(errno.ENOSPC, "No space left on device"), 2, "nas arch: error: No space left on device\n"),
    (
        OSError(errno.EXDEV, "Invalid cross-device link", "a.tmp", None, "b"),
        2,
        "nas arch: error: a.tmp -> b: Invalid cross-device link\n",
    ),
    (
        FileNotFoundError("Fashion-MNIST not found. Looked in: /data"),
        2,
        "nas arch: error: Fashion-MNIST not found. Looked in: /data\n",
    ),
]


@pytest.mark.parametrize(("exc", "status", "stderr"), ONE_LINE, ids=[type(e).__name__ for e, _, _ in ONE_LINE])
def test_user_errors_end_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException, status: int, stderr: str
) -> None:
    assert run_raising(monkeypatch, capsys, exc) == (status, stderr)


def test_a_storage_failure_names_its_cause(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        try:
            raise RuntimeError("database is locked")
        except RuntimeError as cause:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from cause
    except optuna.exceptions.StorageInternalError as err:
        exc = err
    assert run_raising(monkeypatch, capsys, exc) == (
        2,
        "nas arch: error: the study storage failed: An exception is raised during the commit. "
        "(RuntimeError: database is locked)\n",
    )


@pytest.mark.parametrize(
    "exc", [ValueError("a bug"), RuntimeError("a bug"), TypeError("a bug"), OSError("no errno, no file")]
)
def test_other_exceptions_are_bugs_and_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException
) -> None:
    with pytest.raises(type(exc)) as caught:
        run_raising(monkeypatch, capsys, exc)
    assert caught.value is exc
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("exc", [UsageError("bad --thing"), KeyboardInterrupt(), PermissionError(13, "denied", "x")])
def test_debug_re_raises_everything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException
) -> None:
    with pytest.raises(type(exc)) as caught:
        run_raising(monkeypatch, capsys, exc, debug=True)
    assert caught.value is exc


def test_main_sets_the_library_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    optuna.logging.set_verbosity(optuna.logging.INFO)
    warnings.resetwarnings()
    assert main(["arch", "--list"]) == 0
    assert optuna.logging.get_verbosity() == optuna.logging.ERROR
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn("experimental", optuna.exceptions.ExperimentalWarning, stacklevel=1)
        warnings.warn("Heartbeat of storage is supposed to be used with ...", UserWarning, stacklevel=1)
        warnings.warn("`torch.jit.script` is deprecated. Please switch to `torch.compile`", FutureWarning, stacklevel=1)
        warnings.warn("any other warning", UserWarning, stacklevel=1)
        warnings.warn("any other FutureWarning", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["any other warning", "any other FutureWarning"]
