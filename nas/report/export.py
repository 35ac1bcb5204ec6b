"""Every trial of a study as one flat table, for pandas, spreadsheets and other tools.

Columns are plain scalars so CSV and Parquet both hold them: lists become "3,3" or JSON, and a
column whose values mix types (a parameter that is a number in one trial, text in another) is
written as text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import optuna
import pandas

from nas.errors import UsageError
from nas.files import is_stream
from nas.search.results.records import INTERVAL_KEYS
from nas.search.results.study_attrs import generation_number, study_objectives
from nas.search.results.trial_record import TrialRecord, load_records

FORMATS = ("csv", "parquet")
BASE_COLUMNS = (
    "number", "status", "feasible", "reason", "connectivity", "baseline", "reused_from", "arch_hash", "recipe_hash",
    "generation",
)  # fmt: skip


def _scalar(value: Any) -> Any:
    if isinstance(value, list | tuple):
        if all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in value):
            return ",".join(str(v) for v in value)
        return json.dumps(value, default=str)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _row(record: TrialRecord, objectives: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(record, name) for name in BASE_COLUMNS}
    for name in objectives:
        row[name] = record.values.get(name)
    for key in INTERVAL_KEYS:  # always there (empty when unknown), computed on read for older studies
        row[key] = getattr(record, key)
    for key, value in record.metrics.items():
        if key in INTERVAL_KEYS:
            continue
        row[f"metric_{key}" if key in row or key == "duration_s" else key] = _scalar(value)
    for key, value in record.params.items():
        row[f"param_{key}"] = _scalar(value)
    for key, value in record.arch.items():
        row[f"arch_{key}"] = _scalar(value)
    for key, value in (record.prescreen or {}).items():  # how a pre-screen picked the network (records.PRESCREEN)
        row[f"prescreen_{key}"] = _scalar(value)
    row["duration_s"] = record.duration_s
    return row


def _uniform(column: pandas.Series) -> pandas.Series:
    """Text when the non-missing values mix kinds (numbers with text, say); Parquet needs one."""
    present = column.dropna()
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, int | float) else str for v in present}
    if len(kinds) <= 1:
        return column
    return column.map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))


def trials_frame(
    records: list[TrialRecord], *, objectives: list[str] | None = None, generation: int | None = None
) -> pandas.DataFrame:
    """One row per trial, every status; objectives default to the names any record has values for.
    After the objectives: the validation split size and the accuracy's 95% Wilson interval. `generation`: the
    study's own (nas.search.results.generations), for the trials that ran in it rather than being carried over."""
    records = [dataclasses.replace(r, generation=r.generation or generation) for r in records]
    if objectives is None:
        objectives = list(dict.fromkeys(name for r in records for name in r.values))
    rows = [_row(r, objectives) for r in records]
    columns = list(dict.fromkeys([*BASE_COLUMNS, *objectives, *(k for row in rows for k in row)]))
    columns.remove("duration_s")
    columns.append("duration_s")
    frame = pandas.DataFrame(rows, columns=columns)
    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = _uniform(frame[name])
    return frame


def _write(frame: pandas.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def export_trials(*, study: optuna.Study, path: Path, fmt: str) -> Path:
    """Write the study's trials table as CSV or Parquet, atomically (temporary file, then rename)."""
    if fmt not in FORMATS:
        raise UsageError(owner="export", field="fmt", value=fmt, allowed=f"choose one of {', '.join(FORMATS)}")
    frame = trials_frame(
        load_records(study), objectives=study_objectives(study), generation=generation_number(study.study_name)
    )
    path = Path(path)
    if is_stream(path):  # /dev/stdout, a pipe: written in place
        _write(frame, path, fmt)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write(frame, Path(tmp), fmt)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
