"""Files the tool writes for people to read (reports, diagrams): whole or not at all."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def is_stream(path: Path) -> bool:
    """A device, pipe or socket (`/dev/stdout`, a FIFO): written in place, never renamed over, which would put a
    regular file where the device was (as root, `nas trials --csv /dev/stdout` once replaced /dev/stdout)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def write_text_atomic(*, path: Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, then rename it over `path`: a reader (or a crash)
    never sees half a page, and a failed write leaves no temporary file behind. The folder must exist. A device or
    pipe is written in place."""
    if is_stream(path):
        with path.open("w", encoding="utf-8") as stream:
            stream.write(text)
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
