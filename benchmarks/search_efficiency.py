"""Search efficiency: the hypervolume of the validation front each search strategy reaches per unit of
compute, over many seeds, replayed against the recorded learning-curve table (`curve_table.py`).

A strategy is a sampler and an early-stopping rule, both the project's own: the samplers come from
`nas.search.spec.samplers.make_sampler` and stopping from `nas.search.spec.stopping.stop_reason`, given exactly
the evidence a study's trial is given. One simulated worker asks Optuna for a trial, looks its network
up in the table and "trains" it epoch by epoch: each epoch adds the network's cost to the compute
spent and reveals that epoch's recorded validation accuracy, and the stopping rule may end the trial
there. A network drawn again reuses its first result at no cost, as a study does. Compute is training
seconds: a network's per-epoch cost is the median of its recorded epoch seconds (one slow epoch on a
busy machine does not make a network dear). The budget is a fraction of what training every network
of the table fully costs; the study's trial budget (`trials` in the replay's study file: the table's
size) bounds a replay too. A network drawn again costs no compute but uses up a trial, so a sampler
that keeps proposing networks it already knows stalls, as it would in a real study.

A pre-screened strategy (`tpe+snip`: issue 22, `[prescreen]` of a study file) claims each trial as a study does,
through `nas.search.run.prescreen.Prescreener`: `pool` proposals of the sampler, the recorded proxy score of each
(`<table>_proxies.csv`, written by proxy_table.py), one picked by the rule; the recorded seconds of scoring each
network for the first time are compute spent like training seconds, and the proposals not taken are never trials.

Hypervolume: of the finished trials' front in (validation error, log10 FLOPs), both scaled to [0, 1]
by the table's own range of errors and FLOPs (a fully trained network's accuracy is its best epoch's,
the objective a study stores), against the reference point (1, 1); reported
also as a share of the hypervolume of the table's true front (1.0 = the best front the space has).

    python benchmarks/search_efficiency.py                       # every strategy, 20 seeds, the shipped table
    python benchmarks/search_efficiency.py --seeds 3 --strategies tpe tpe+mo_asha
    python benchmarks/search_efficiency.py --out r.json --chart r.html
    python benchmarks/search_efficiency.py --table benchmarks/data/digits_tabular.csv \
        --study benchmarks/data/tabular_replay_digits.toml --strategies tpe tpe+snip
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))  # curve_table, run as a script or imported
from curve_table import SHIPPED_TABLE, Network, read_table
from proxy_table import scores_path
from replay_summary import Replay, chart, markdown, summary

from nas.arch import ArchConfig
from nas.cli.arch import parse_pairs
from nas.cli.main import configure_libraries
from nas.report.data import hypervolume
from nas.search.run.prescreen import Prescreener, Scorer
from nas.search.spec.objectives import COSTS_BEFORE_TRAINING
from nas.search.spec.prescreen import Prescreen
from nas.search.spec.samplers import make_sampler
from nas.search.spec.stopping import Evidence, stop_reason
from nas.search.spec.studyfile import StudyFile
from nas.search.spec.studyfile_reader import load_study_file

REPLAY_STUDY = Path(__file__).resolve().parent / "data" / "tabular_replay.toml"
POOL = 64  # a pre-screen's proposals per trial, as issue 22's example and [prescreen] pool's default


@dataclass(frozen=True)
class Strategy:
    sampler: str  # a sampler of nas.search.spec.studyfile.SAMPLERS
    stopping: str  # a method of nas.search.spec.stopping (none, pareto_stop, mo_asha)
    proxy: str | None = None  # pre-screened by this proxy (nas.train.proxies.PROXIES), `pool` proposals a trial
    select: str = "proxy"  # the pre-screen's rule (nas.search.spec.prescreen.SELECTS)


STRATEGIES: dict[str, Strategy] = {
    "random": Strategy("random", "none"),
    "tpe": Strategy("tpe", "none"),
    "tpe+pareto_stop": Strategy("tpe", "pareto_stop"),
    "tpe+mo_asha": Strategy("tpe", "mo_asha"),
    "nsga2+mo_asha": Strategy("nsga2", "mo_asha"),
    # pre-screens: synflow (the issue's example, Abdelfattah et al.'s best on NAS-Bench-201), snip and naswot (the
    # best two at equal cost on the tables' own proxy figures, RESULTS.md), each by the best score or as a veto
    "tpe+synflow": Strategy("tpe", "none", proxy="synflow"),
    "tpe+snip": Strategy("tpe", "none", proxy="snip"),
    "tpe+naswot": Strategy("tpe", "none", proxy="naswot"),
    "tpe+synflow/pareto": Strategy("tpe", "none", proxy="synflow", select="pareto"),
    "tpe+snip/pareto": Strategy("tpe", "none", proxy="snip", select="pareto"),
}


@dataclass(frozen=True)
class Table:
    """The recorded networks by hash, with the scales the hypervolume uses."""

    networks: dict[str, Network]
    val_images: int
    log_flops: tuple[float, float]  # min, max of log10 FLOPs
    error: tuple[float, float]  # min, max of final validation error
    input_size: tuple[int, int, int]  # (C, H, W) of the table's data
    proxies: dict[str, dict[str, str]]  # arch hash -> its row of <table>_proxies.csv (empty: none recorded)

    @classmethod
    def load(cls, path: Path) -> Table:
        nets = read_table(path)
        if not nets:
            raise SystemExit(f"{path} holds no networks: build it with benchmarks/curve_table.py")
        meta = json.loads(path.with_suffix(".json").read_text())
        logs = [math.log10(n.flops) for n in nets]
        errors = [1.0 - n.best for n in nets]
        proxies: dict[str, dict[str, str]] = {}
        if scores_path(path).is_file():
            with scores_path(path).open(newline="") as handle:
                proxies = {row["arch_hash"]: row for row in csv.DictReader(handle)}
        c, h, w = meta["input_size"]
        return cls(
            networks={n.arch_hash: n for n in nets},
            val_images=int(meta["settings"]["val_images"]),
            log_flops=(min(logs), max(logs)),
            error=(min(errors), max(errors)),
            input_size=(int(c), int(h), int(w)),
            proxies=proxies,
        )

    def scorer(self, proxy: str) -> Scorer:
        """A network's recorded score by `proxy` (None where it was undefined) and the seconds it took."""
        if not self.proxies:
            raise SystemExit("no proxy scores are recorded for this table: run benchmarks/proxy_table.py on it")

        def score(net: ArchConfig) -> tuple[float | None, float]:
            row = self.proxies[net.arch_hash()]
            value = row[proxy]
            return (float(value) if value else None), float(row[f"sec_{proxy}"])

        return score

    def epoch_cost(self, net: Network) -> float:
        return statistics.median(net.seconds)

    def full_cost(self) -> float:
        return sum(self.epoch_cost(n) * n.epochs for n in self.networks.values())

    def scaled(self, accuracy: float, flops: float) -> tuple[float, float]:
        """(error, log FLOPs) scaled to [0, 1] by the table's range: the hypervolume's axes."""
        (f0, f1), (e0, e1) = self.log_flops, self.error
        return ((1.0 - accuracy - e0) / (e1 - e0), (math.log10(flops) - f0) / (f1 - f0))

    def hypervolume(self, points: Sequence[tuple[float, float]]) -> float:
        """Of (accuracy, flops) points, in the scaled box against the reference (1, 1)."""
        if not points:
            return 0.0
        return hypervolume(np.array([self.scaled(a, f) for a, f in points]), np.array([1.0, 1.0]))

    def best_hypervolume(self) -> float:
        return self.hypervolume([(n.best, n.flops) for n in self.networks.values()])


def replay(*, table: Table, sf: StudyFile, strategy: str, seed: int, budget: float, pool: int = POOL) -> Replay:
    """Run `strategy` against `table` until `budget` seconds of compute are spent."""
    plan = STRATEGIES[strategy]
    run_sf = dataclasses.replace(
        sf, sampler=plan.sampler, seed=seed, pruning=dataclasses.replace(sf.pruning, method=plan.stopping)
    )
    prescreener = None
    if plan.proxy is not None:
        run_sf = dataclasses.replace(run_sf, prescreen=Prescreen(proxy=plan.proxy, pool=pool, select=plan.select))
        prescreener = Prescreener(run_sf, input_size=table.input_size, num_classes=10, score=table.scorer(plan.proxy))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(run_sf))
    out = Replay(strategy=strategy, seed=seed)
    evidence: list[Evidence] = []  # of every network trained, as a study's tally gives it (twins left out)
    results: dict[str, tuple[float, ...] | None] = {}  # hash -> (accuracy, flops), None if stopped early
    finished: list[tuple[float, float]] = []  # (accuracy, flops) of every network that completed
    spent = 0.0
    while spent < budget and out.trials < sf.trials:
        if prescreener is not None:  # as a study's claim does (nas.search.run.trial_life.claim)
            choice = prescreener.choose(study)
            spent += choice.score_seconds
            out.proposals += choice.proposals
            out.prescreen_seconds += choice.score_seconds
            study.enqueue_trial(choice.params)
        trial = study.ask()
        cfg = ArchConfig(**{**run_sf.space.suggest(trial), "in_channels": 1, "num_classes": 10})
        net = table.networks[cfg.arch_hash()]
        out.trials += 1
        if net.arch_hash not in results:
            spent += _train(run_sf, table, net, trial.number, evidence, out)
            final = evidence[-1].final
            results[net.arch_hash] = None if final is None else (final, float(net.flops))
            if final is not None:
                finished.append((final, float(net.flops)))
        result = results[net.arch_hash]
        if result is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, list(result))
        out.spent.append(spent)
        out.hv.append(table.hypervolume(finished))
    out.study_trials = len(study.trials)
    return out


def _train(
    sf: StudyFile,
    table: Table,
    net: Network,
    number: int,
    evidence: list[Evidence],
    out: Replay,
) -> float:
    """Reveal `net`'s curve epoch by epoch until it ends or the rule stops it; returns the compute spent."""
    costs = {name: float(getattr(net, name)) for name in COSTS_BEFORE_TRAINING}  # the table's params, flops
    others = list(evidence)
    curve: list[float] = []
    stopped = False
    for epoch in range(1, net.epochs + 1):
        curve.append(net.accuracy[epoch - 1])
        why = stop_reason(
            sf.pruning,
            epoch=epoch,
            max_epochs=net.epochs,
            curve=curve,
            costs=costs,
            others=others,
            val_images=table.val_images,
        )
        if why is not None:
            stopped = True
            break
    # a finished trial's objective is its best epoch's accuracy, as a study stores it
    evidence.append(Evidence(number=number, costs=costs, curve=tuple(curve), final=None if stopped else max(curve)))
    out.trained += 1
    out.networks.append(net.arch_hash)
    out.stopped += stopped
    out.epochs += len(curve)
    return table.epoch_cost(net) * len(curve)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=Path, default=SHIPPED_TABLE)
    p.add_argument("--study", type=Path, default=REPLAY_STUDY, help="objectives, space and [pruning] settings")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--pool", type=int, default=POOL, help="a pre-screen's proposals per trial")
    p.add_argument("--budget", type=float, default=0.25, help="share of training every network fully (0-1]")
    p.add_argument(
        "--pruning",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a [pruning] setting of the replay study for every strategy (min_epochs=3, eta=2, margin=0.02)",
    )
    p.add_argument("--out", type=Path, help="write the numbers as JSON")
    p.add_argument("--chart", type=Path, help="write the hypervolume-vs-compute chart as HTML")
    args = p.parse_args(argv)
    if args.seeds < 1 or not 0 < args.budget <= 1 or args.pool < 2:
        p.error("--seeds must be >= 1, --pool >= 2 and --budget in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configure_libraries()  # Optuna's log level and its experimental-feature warnings, as the CLI sets them
    table = Table.load(args.table)
    sf = load_study_file(args.study)
    if args.pruning:
        sf = dataclasses.replace(
            sf, pruning=dataclasses.replace(sf.pruning, **parse_pairs(args.pruning, option="--pruning"))
        )
    budget = args.budget * table.full_cost()
    best = table.best_hypervolume()
    started = time.perf_counter()
    replays = []
    for name in args.strategies:
        for seed in range(args.seeds):
            replays.append(replay(table=table, sf=sf, strategy=name, seed=seed, budget=budget, pool=args.pool))
        print(f"{name}: {args.seeds} seeds done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    rows = summary(replays, budget=budget, best=best)
    overrides = f", [pruning] {' '.join(args.pruning)}" if args.pruning else ""
    if any(STRATEGIES[name].proxy for name in args.strategies):
        overrides += f", pre-screens of {args.pool} proposals a trial"
    heading = (
        f"{len(table.networks)} networks of {args.table.name}, budget {args.budget:.0%} of training all of them "
        f"fully ({budget / 60:.1f} of {table.full_cost() / 60:.1f} min), {args.seeds} seeds; HV as a share of "
        f"the table's best front ({best:.4f}){overrides}"
    )
    if args.out:
        runs = [dataclasses.asdict(r) for r in replays]
        payload = {"heading": heading, "budget_seconds": budget, "best_hv": best, "rows": rows, "runs": runs}
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
    if args.chart:
        chart(replays, budget=budget, best=best, path=args.chart)
    print(f"{heading}\n\n{markdown(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
