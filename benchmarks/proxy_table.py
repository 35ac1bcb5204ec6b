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
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # curve_table, run as a script or imported
import torch
from curve_table import SHIPPED_TABLE, Network, read_table

from nas.arch import ArchConfig
from nas.data.datasets import DataConfig, load_data
from nas.search.results.proxy_ranking import Candidate, ProxyRanking, Scored, rank_proxies
from nas.stats import Correlation
from nas.train.proxies import PROXIES, ProxyScore, score_network

TRAINING_PROXIES = (1, 2)  # epochs of training whose accuracy (from the table) is scored as a proxy


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


def scored_networks(nets: list[Network], scores: dict[str, dict[str, str]]) -> tuple[list[Scored], list[str]]:
    """The table's networks as `nas.search.run.scoring` ranks them: each proxy's recorded score, and the accuracy
    after 1 and 2 epochs (from the table, with their training seconds) as training proxies; and the signal names."""
    training = [f"epoch {e} accuracy" for e in TRAINING_PROXIES]
    out = []
    for net in nets:
        row = scores[net.arch_hash]
        signals = {
            n: ProxyScore(n, float(row[n]) if row[n] else None, float(row[f"sec_{n}"]), row[f"undefined_{n}"] or None)
            for n in PROXIES
        }
        for name, epochs in zip(training, TRAINING_PROXIES, strict=True):
            signals[name] = ProxyScore(name, net.accuracy[epochs - 1], sum(net.seconds[:epochs]), None)
        candidate = Candidate(net.arch_hash, ArchConfig.from_dict(net.config), target(net))
        out.append(Scored(candidate, net.connectivity, float(net.flops), signals))
    return out, [*PROXIES, *training]


def _shown(c: Correlation | None) -> str:
    return c.text(digits=3) if c is not None else "-"  # None: too few networks to correlate


def correlation_rows(rankings: list[ProxyRanking]) -> list[dict[str, str]]:
    """One row per signal: its correlations with the target, at equal cost, top-10% overlap and seconds."""
    return [
        {
            "signal": r.proxy,
            "networks": str(r.networks),
            "spearman": _shown(r.spearman),
            "kendall": _shown(r.kendall),
            "equal-cost spearman": _shown(r.equal_cost),
            "top-10% found": f"{r.top:.2f}" if r.top is not None else "-",
            "seconds per network": f"{r.seconds:.3g}",
        }
        for r in rankings
    ]


def per_mode_rows(rankings: list[ProxyRanking], modes: list[str]) -> list[dict[str, str]]:
    """Spearman within each connectivity mode: whether a signal ranks networks of one wiring."""
    rows = []
    for r in rankings:
        row = {"signal": r.proxy}
        for mode in modes:
            c = r.per_mode.get(mode)
            row[mode] = f"{c.value:.2f} (n={c.n})" if c is not None and c.value is not None else "-"
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
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads (default: the table's own, so scoring seconds compare with its training seconds)",
    )
    args = parser.parse_args(argv)
    threads = args.threads or int(json.loads(args.table.with_suffix(".json").read_text())["environment"]["cpu_threads"])
    torch.set_num_threads(threads)
    nets = read_table(args.table)
    if not nets:
        raise SystemExit(f"{args.table} holds no networks: build it with benchmarks/curve_table.py")
    scores = score_table(table=args.table, seed=args.seed, batch=args.batch_size, device=args.device)
    print(f"\n{len(nets)} networks of {args.table.name}; target: the validation accuracy after the last epoch\n")
    scored, names = scored_networks(nets, scores)
    rankings = rank_proxies(scored, names=names, seed=args.seed)
    print(markdown(correlation_rows(rankings)))
    print("\nSpearman within each connectivity mode:\n")
    print(markdown(per_mode_rows(rankings, sorted({n.connectivity for n in nets}))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
