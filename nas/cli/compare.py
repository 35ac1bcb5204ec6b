"""`nas report A.toml B.toml ... --out DIR`: each study's own report, then compare.html beside them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.report.compare_page import FILENAME
from nas.report.page import safe_filename

LABEL_LENGTH = 60  # leaves room for "-N.html" inside a safe file name


def labels_for(paths: Sequence[str]) -> list[str]:
    """Each study file's stem, made filename-safe; a stem seen before (or `compare`, the comparison's own
    page) takes -2, -3, ... in the order the files were given, so the same command names the same files."""
    taken = {FILENAME.lower()}
    labels = []
    for path in paths:
        stem = safe_filename(Path(path).stem)[:LABEL_LENGTH] or "study"
        label, n = stem, 1
        while f"{label}.html".lower() in taken:  # lower: one file on a case-insensitive disk
            n += 1
            label = f"{stem}-{n}"
        taken.add(f"{label}.html".lower())
        labels.append(label)
    return labels


def write_reports(*, studies: Sequence[tuple[str, Any, list[dict[str, Any]] | None]], out_dir: Path) -> list[Path]:
    """Each study's report as out_dir/<label>.html, then out_dir/compare.html linking them; every path written.

    `studies`: (label, optuna study, its ablation rows or None), all loaded before this writes anything."""
    from nas.report.compare import compute_comparison
    from nas.report.compare_page import write_comparison
    from nas.report.data import compute_report_data
    from nas.report.page import write_report

    comparison = compute_comparison(studies=[(label, study) for label, study, _ in studies])
    paths, links = [], {}
    for label, study, ablation in studies:
        data = compute_report_data(study=study, ablation=ablation)
        path = write_report(data=data, out_dir=out_dir, filename=f"{label}.html")
        links[label] = path.name
        paths.append(path)
    paths.append(write_comparison(comparison=comparison, out_dir=out_dir, links=links))
    return paths
