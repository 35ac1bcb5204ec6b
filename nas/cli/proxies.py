"""`nas proxies STUDY`: zero-cost proxies of a study's networks, and how well they rank what training measured."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from nas.cli.arch import int_arg
from nas.cli.stored import _study_args, _study_file
from nas.errors import UsageError
from nas.text import command, plural


def _names(text: str | None) -> list[str]:
    from nas.train.proxies import PROXIES

    if text is None:
        return list(PROXIES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROXIES]
    if unknown or not names:
        raise UsageError(owner="--proxies", value=text, allowed=f"names from {', '.join(PROXIES)}, comma-separated")
    return list(dict.fromkeys(names))


def _shown(c: Any) -> str:
    return c.text() if c is not None else "-"  # None: too few networks to correlate


def _write_csv(path: Path, scored: list[Any], names: list[str]) -> None:
    columns = ["network", "connectivity", "val_accuracy", *names, *(f"{n}_seconds" for n in names)]
    columns += [f"{n}_undefined" for n in names]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for s in scored:
            row: dict[str, Any] = {
                "network": s.candidate.label,
                "connectivity": s.connectivity,
                "val_accuracy": s.candidate.accuracy,
            }
            for n in names:
                score = s.scores[n]
                row.update({n: score.value, f"{n}_seconds": round(score.seconds, 4), f"{n}_undefined": score.undefined})
            writer.writerow(row)


def cmd_proxies(args: argparse.Namespace) -> int:
    from nas.cli.stored import _open_existing
    from nas.data.datasets import load_data
    from nas.search.results.proxy_ranking import rank_proxies, stored_scores
    from nas.search.results.study_attrs import write_proxy_scores
    from nas.search.run.scoring import score_candidates, space_candidates, study_candidates

    names = _names(args.proxies)
    sf = _study_file(args.study)
    if args.sample is not None and args.every:
        raise UsageError(owner="--every", value=True, allowed="--every or --sample N, not both")
    data = load_data(sf.data)
    study = None
    if args.sample is not None or args.every:
        candidates = space_candidates(sf=sf, data=data, count=None if args.every else args.sample)
        what = f"{plural(len(candidates), 'network')} of the space {sf.space.name}"
    else:
        study = _open_existing(args.study, args.storage)
        candidates = study_candidates(study=study, data=data)
        what = f"{plural(len(candidates), 'trained network')} of study {sf.name}"
    if not candidates:
        raise UsageError(
            f"study {sf.name!r} has no trained network to score yet: run it first, or score its space with --sample N"
        )
    if args.csv is not None and args.csv.is_dir():
        raise UsageError(owner="--csv", value=str(args.csv), allowed="a file path (this is a folder)")
    print(f"scoring {what}: {', '.join(names)} on one minibatch of {args.batch_size} {sf.data.name} images", flush=True)

    def progress(i: int, s: Any) -> None:
        if i % 10 == 0 or i == len(candidates):
            print(f"  {i}/{len(candidates)} scored", file=sys.stderr, flush=True)

    scored = score_candidates(
        candidates=candidates,
        data=data,
        names=names,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        progress=progress,
    )
    if args.csv is not None:
        _write_csv(args.csv, scored, names)
        print(f"scores: {args.csv}")
    rankings = rank_proxies(scored, names=names, seed=args.seed)
    if study is not None:  # the report shows the same figures from these
        networks = {
            s.candidate.network.arch_hash(): {n: s.scores[n].value for n in names}
            for s in scored
            if s.candidate.network is not None
        }
        seconds = {r.proxy: r.seconds for r in rankings}  # each proxy's median seconds per network
        write_proxy_scores(study, stored_scores(scores=networks, names=names, seconds=seconds))
        report = command("nas", "report", args.study, storage=args.storage)
        print(f"stored in study {sf.name}: `{report}` shows them")
    trained = any(s.candidate.accuracy is not None for s in scored)
    header = f"{'proxy':<10} {'s/network':>9}"
    if trained:
        header += f"  {'spearman':<19} {'kendall':<19} {'equal-cost':<19} {'top 10%':>7}"
    print(header)
    for r in rankings:
        line = f"{r.proxy:<10} {r.seconds:>9.3g}"
        if trained:
            top = f"{r.top:.2f}" if r.top is not None else "-"
            line += f"  {_shown(r.spearman):<19} {_shown(r.kendall):<19} {_shown(r.equal_cost):<19} {top:>7}"
        print(line)
    if trained and any(r.per_mode for r in rankings):
        print("spearman within each connectivity mode (with enough trained networks):")
        for r in rankings:
            modes = ", ".join(f"{mode} {_shown(c)} (n={c.n})" for mode, c in r.per_mode.items()) or "-"
            print(f"  {r.proxy:<10} {modes}")
    if trained:
        print(
            "correlations with validation accuracy, 95% bootstrap intervals; equal-cost: with the accuracy left "
            "after a quadratic fit on log FLOPs; top 10%: the share of the best tenth by accuracy in the proxy's "
            "best tenth. A proxy earns its place only above params at equal cost."
        )
    return 0


def add_proxies_command(sub: Any) -> None:
    p = sub.add_parser(
        "proxies",
        help="score a study's networks by zero-cost proxies and rank them against their measured accuracy",
        description="Score a study's trained networks by zero-cost proxies and rank them against their validation "
        "accuracy; the scores are stored in the study, whose report then shows the same figures. --sample N or "
        "--every scores its space's networks before any training instead (nothing is stored).",
    )
    _study_args(p)
    p.add_argument("--proxies", help="comma-separated proxy names (default: all)")
    p.add_argument("--sample", type=int_arg, help="score N seeded draws of the study's space instead of its trials")
    p.add_argument("--every", action="store_true", help="score every network of a finite space instead")
    p.add_argument("--seed", type=int_arg, default=0, help="the minibatch and the initialisation (default: 0)")
    p.add_argument("--batch-size", type=int_arg, default=64, help="images in the minibatch (default: 64)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--csv", type=Path, help="write every score to this CSV file")
    p.set_defaults(func=cmd_proxies)
