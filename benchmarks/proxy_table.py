"""Do zero-cost proxies rank this project's networks? Measured on a recorded learning-curve table.

Every network of a table built by `curve_table.py` is scored by every proxy of `nas.train.proxies` (one
seeded minibatch of the table's own training data, the network at its initialisation) and the scores are
compared with what the table recorded after full training: Spearman and Kendall correlations with 95%
bootstrap intervals, the same "at equal cost" (with the residual of accuracy after a quadratic fit on log
FLOPs: a multi-objective search already knows each network's cost, so a proxy helps only by ranking
networks of the same cost), and the share of the top 10% by accuracy that a proxy's top 10% finds. One
epoch and two epochs of training (from the table) are scored beside the proxies as training proxies, and
the seconds each signal costs per network are reported with it.

    python benchmarks/proxy_table.py                      # the shipped Fashion-MNIST table, CPU
    python benchmarks/proxy_table.py --table T.csv        # another table (its JSON settings beside it)

The scores are written to `<table>_proxies.csv` (resumed: networks already scored with the same seed and
batch are skipped), the correlation table is printed last, as markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # curve_table, run as a script or imported
from curve_table import SHIPPED_TABLE, Network, read_table

from nas.arch import ArchConfig
from nas.data.datasets import DataConfig, load_data
from nas.stats import Correlation, equal_cost_correlation, rank_correlation, top_overlap
from nas.train.proxies import PROXIES, score_network

TRAINING_PROXIES = (1, 2)  # epochs of training whose accuracy (from the table) is scored as a proxy
BOOTSTRAP = 1000


def target(net: Network) -> float:
    """What a proxy should predict: the accuracy after the table's last epoch (the "epoch-8 accuracy" of issue
    22's figures, which reproduce with it and not with the best over the epochs)."""
    return net.accuracy[-1]


def scores_path(table: Path) -> Path:
    return table.with_name(table.stem + "_proxies.csv")


def _settings(table: Path) -> dict[str, Any]:
    meta = table.with_suffix(".json")
    if not meta.is_file():
        raise SystemExit(f"{meta} is missing: the table's settings (written by curve_table.py) say what data it used")
    settings: dict[str, Any] = json.loads(meta.read_text())["settings"]
    return settings


def _read_scores(path: Path, seed: int, batch: int) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {r["arch_hash"]: r for r in rows if r["seed"] == str(seed) and r["batch_size"] == str(batch)}


def score_table(*, table: Path, seed: int, batch: int, device: str) -> dict[str, dict[str, str]]:
    """Every network of the table scored by every proxy (resumed from the scores file), by arch hash."""
    nets = read_table(table)
    settings = _settings(table)
    data = load_data(DataConfig(**settings["data"]))
    path = scores_path(table)
    done = _read_scores(path, seed, batch)
    names = list(PROXIES)
    columns = ["arch_hash", "connectivity", "seed", "batch_size", *names, *(f"sec_{n}" for n in names)]
    columns += [f"undefined_{n}" for n in names]
    started = time.monotonic()
    for i, net in enumerate(nets, 1):
        if net.arch_hash in done:
            continue
        scores = score_network(
            network=ArchConfig.from_dict(net.config), data=data, names=names, seed=seed, batch_size=batch, device=device
        )
        row = {
            "arch_hash": net.arch_hash,
            "connectivity": net.connectivity,
            "seed": str(seed),
            "batch_size": str(batch),
        }
        for n, s in scores.items():
            row[n] = "" if s.value is None else repr(s.value)
            row[f"sec_{n}"] = f"{s.seconds:.3g}"
            row[f"undefined_{n}"] = s.undefined or ""
        done[net.arch_hash] = row
        new = not path.is_file()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(f"[{i}/{len(nets)}] {net.arch_hash} {net.connectivity} {time.monotonic() - started:.0f}s", flush=True)
    return done


def _signals(nets: list[Network], scores: dict[str, dict[str, str]]) -> dict[str, tuple[list[float], float]]:
    """Each signal's values in table order (networks without a value left out by the caller: NaN) and its
    median seconds per network."""
    out: dict[str, tuple[list[float], float]] = {}
    for name in PROXIES:
        values = [float(scores[n.arch_hash][name]) if scores[n.arch_hash][name] else float("nan") for n in nets]
        seconds = statistics.median(float(scores[n.arch_hash][f"sec_{name}"]) for n in nets)
        out[name] = (values, seconds)
    for epochs in TRAINING_PROXIES:
        seconds = statistics.median(sum(n.seconds[:epochs]) for n in nets)
        out[f"epoch {epochs} accuracy"] = ([n.accuracy[epochs - 1] for n in nets], seconds)
    return out


def _shown(c: Correlation) -> str:
    if c.value is None:  # a constant score, or one cost explains wholly
        return "-"
    interval = f" [{c.low:.2f}, {c.high:.2f}]" if c.low is not None and c.high is not None else ""
    return f"{c.value:.3f}{interval}"


def correlation_rows(nets: list[Network], scores: dict[str, dict[str, str]], *, seed: int) -> list[dict[str, str]]:
    """One row per signal: its correlations with the target, at equal cost, top-10% overlap and seconds."""
    rows = []
    for name, (values, seconds) in _signals(nets, scores).items():
        keep = [i for i, v in enumerate(values) if np.isfinite(v)]
        x = [values[i] for i in keep]
        y = [target(nets[i]) for i in keep]
        cost = [float(nets[i].flops) for i in keep]
        if len(keep) < 3:
            rows.append({"signal": name, "networks": str(len(keep))})
            continue
        rows.append(
            {
                "signal": name,
                "networks": str(len(keep)),
                "spearman": _shown(rank_correlation(x=x, y=y, method="spearman", resamples=BOOTSTRAP, seed=seed)),
                "kendall": _shown(rank_correlation(x=x, y=y, method="kendall", resamples=BOOTSTRAP, seed=seed)),
                "equal-cost spearman": _shown(
                    equal_cost_correlation(score=x, accuracy=y, cost=cost, resamples=BOOTSTRAP, seed=seed)
                ),
                "top-10% found": f"{top_overlap(score=x, accuracy=y, fraction=0.1):.2f}",
                "seconds per network": f"{seconds:.3g}",
            }
        )
    return rows


def per_mode_rows(nets: list[Network], scores: dict[str, dict[str, str]], *, seed: int) -> list[dict[str, str]]:
    """Spearman within each connectivity mode: whether a proxy ranks networks of one wiring."""
    modes = sorted({n.connectivity for n in nets})
    rows = []
    for name, (values, _) in _signals(nets, scores).items():
        row = {"signal": name}
        for mode in modes:
            keep = [i for i, n in enumerate(nets) if n.connectivity == mode and np.isfinite(values[i])]
            if len(keep) >= 3:
                c = rank_correlation(
                    x=[values[i] for i in keep], y=[target(nets[i]) for i in keep], resamples=BOOTSTRAP, seed=seed
                )
                row[mode] = f"{c.value:.2f} (n={len(keep)})"
            else:
                row[mode] = f"- (n={len(keep)})"
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(r.get(c, "") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=SHIPPED_TABLE)
    parser.add_argument("--seed", type=int, default=0, help="the minibatch and the initialisation")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    nets = read_table(args.table)
    if not nets:
        raise SystemExit(f"{args.table} holds no networks: build it with benchmarks/curve_table.py")
    scores = score_table(table=args.table, seed=args.seed, batch=args.batch_size, device=args.device)
    print(f"\n{len(nets)} networks of {args.table.name}; target: the validation accuracy after the last epoch\n")
    print(markdown(correlation_rows(nets, scores, seed=args.seed)))
    print("\nSpearman within each connectivity mode:\n")
    print(markdown(per_mode_rows(nets, scores, seed=args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
