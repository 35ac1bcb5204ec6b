"""`nas show` (one trial's network, as `nas arch` prints it or as a CONFIG.json) and `nas finalize` (the
chosen networks trained on train+validation, then measured once on the test split)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nas.cli.arch import int_arg
from nas.cli.reproduce import train_command, trial_with_network
from nas.cli.stored import _load_existing, _study_file, _writable_folder, _write_report
from nas.cli.study import _at_least_one, _stop_on_sigterm
from nas.errors import UsageError
from nas.text import command, plural

FRONT = "front"


def _input_size(study: Any, args: argparse.Namespace) -> tuple[int, int, int]:
    """The dataset's C, H, W as the study recorded it (older studies: from the data itself)."""
    from nas.search.results.study_attrs import study_provenance

    size = study_provenance(study).get("input_size")
    if isinstance(size, list) and len(size) == 3:
        return (int(size[0]), int(size[1]), int(size[2]))
    from nas.data.datasets import load_data

    return load_data(_study_file(args.study).data).input_size


def cmd_show(args: argparse.Namespace) -> int:
    from nas.arch import ArchConfig
    from nas.arch.cost import estimate
    from nas.arch.external import TORCHVISION_PREFIX
    from nas.cli.arch import format_table
    from nas.search.spec.objectives import ACCURACY

    study = _load_existing(args)
    number = args.trial
    _, record = trial_with_network(study, number)
    status = record.status + (f" (from trial {record.reused_from})" if record.reused_from is not None else "")
    accuracy = record.metrics.get(ACCURACY)
    shown = "not trained" if record.status == "rejected" or accuracy is None else f"val accuracy {accuracy:.2%}"
    what = f"baseline {record.baseline} ({record.connectivity})" if record.baseline else record.connectivity
    header = f"trial {number}: {status}, {shown}, {what}"
    if record.over_budgets:  # a reference trained whatever the budgets say: true, but on no front
        header += f"; over the study's {' and '.join(record.over_budgets)}, so on no front"
    if record.prescreen:  # the sampler proposed several networks; the pre-screen trained this one
        p = record.prescreen
        score = f"{p['score']:.4g}" if isinstance(p.get("score"), int | float) else "no score"
        header += (
            f"; picked by {p['proxy']} ({score}, select = {p['select']}) among {p['proposals']} proposals, "
            f"the sampler's #{int(p['rank']) + 1}"
        )
    # Every command printed here runs as printed (the study's storage too, when it was given).
    train = f"`{train_command(study=args.study, trial=number, storage=args.storage)}`"
    finalize = f"`{command('nas', 'finalize', args.study, '--trials', str(number), storage=args.storage)}`"
    if record.baseline and record.baseline.startswith(TORCHVISION_PREFIX):
        if args.json:
            raise UsageError(
                f"study {study.study_name!r} trial {number} is the torchvision baseline {record.baseline}: it has "
                f"no ArchConfig JSON; {train} trains it as the study did, {finalize} trains and tests it",
                owner="--trial",
                value=number,
            )
        print(header)
        print(f"{record.baseline} is a torchvision model, not an ArchConfig network: no stage table")
        print(f"train it as the study did: {train}")
        print(f"train it on train+validation and measure it on the test split: {finalize}")
        return 0
    config = ArchConfig.from_dict(record.arch)
    if args.json:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    print(header)
    print(format_table(estimate(config, input_size=_input_size(study, args))))
    print(f"train it as the study did: {train}")
    if not record.baseline:
        as_json = command("nas", "show", args.study, "--trial", str(number), "--json", storage=args.storage)
        print(f"its ArchConfig (for nas arch and nas train): `{as_json}`")
    return 0


def _trial_numbers(text: str) -> list[int] | None:
    """--trials: `front` (None) or trial numbers N,M,... (each once, in the order given)."""
    if text == FRONT:
        return None
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(
            owner="--trials", value=text, allowed="front, or trial numbers separated by commas (3,7,12)"
        ) from None
    return list(dict.fromkeys(numbers))


def cmd_finalize(args: argparse.Namespace) -> int:
    from nas.data.datasets import load_data
    from nas.search.results.finals import final_rows, stored_runs, write_final_csv
    from nas.search.run import finalize as final
    from nas.train.measure import resolve_device

    _at_least_one("--seeds", args.seeds)
    _at_least_one("--epochs", args.epochs)
    numbers = _trial_numbers(args.trials)
    if not args.no_report:
        _writable_folder("--out", Path(args.out))
    sf = _study_file(args.study)
    csv_path = sf.run_dir() / "final.csv"
    study = _load_existing(args)
    device = resolve_device(args.device or sf.device)
    data_config, recipe = final.final_settings(sf, epochs=args.epochs)
    data = load_data(data_config)
    final.check_final_data(sf, data)
    c, _, _ = data.input_size
    networks = final.choose_networks(study, trials=numbers, in_channels=c, num_classes=data.num_classes)
    print(
        f"finalize {plural(len(networks), 'network')} x {plural(args.seeds, 'seed')}: "
        f"{plural(recipe.epochs, 'epoch')} each on {data.name} train+validation ({len(data.train):,} images), "
        f"then once on its test split ({len(data.test):,} images), on {device}"
    )
    for net in networks:
        twins = [str(n) for n in net.folded if n != net.trial]
        if twins:
            print(
                f"  {'trial' if len(twins) == 1 else 'trials'} {', '.join(twins)} folded into trial {net.trial}: "
                "the same network"
            )
    _stop_on_sigterm()
    try:
        outcome = final.finalize(
            study, networks, data=data, data_config=data_config, recipe=recipe, seeds=args.seeds, device=device
        )
    except KeyboardInterrupt:
        write_final_csv(csv_path, final_rows(stored_runs(study)))
        again = command(  # the same runs: the same networks, seeds and epochs
            "nas",
            "finalize",
            args.study,
            *(["--trials", args.trials] if args.trials != FRONT else []),
            "--seeds",
            str(args.seeds),
            *(["--epochs", str(args.epochs)] if args.epochs is not None else []),
            storage=args.storage,
        )
        print(f"interrupted: finished runs are kept; run `{again}` again to finish", file=sys.stderr)
        return 130
    rows = final_rows(stored_runs(study))
    for row in rows:
        spread = f" +- {row.test_accuracy_std:.2%}" if row.test_accuracy_std is not None else ""
        print(
            f"  trial {row.trial} {row.network}: test {row.test_accuracy_mean:.2%}{spread} "
            f"({plural(row.seeds, 'seed')}, {plural(row.epochs, 'epoch')}), {row.params:,} params"
        )
    print(f"final table: {write_final_csv(csv_path, rows)}")
    if not args.no_report:
        print(f"report: {_write_report(study, Path(args.out))}")
    for failure in outcome.failures:
        print(f"nas finalize: {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0


def add_final_commands(sub: Any) -> None:
    """Register `nas show` and `nas finalize` on the `nas` subparsers."""
    show = sub.add_parser("show", help="print one trial's network: its stage table, or --json for nas arch/train")
    show.add_argument("study", help="a study file (TOML)")
    show.add_argument("--trial", type=int_arg, required=True, metavar="N", help="the trial number")
    show.add_argument("--json", action="store_true", help="print the ArchConfig JSON that nas arch and nas train take")
    show.add_argument("--storage", help="an Optuna storage URL (default: the study file's)")
    show.set_defaults(func=cmd_show)

    fin = sub.add_parser(
        "finalize", help="retrain chosen networks on train+validation and measure each once on the test split"
    )
    fin.add_argument("study", help="a study file (TOML)")
    fin.add_argument(
        "--trials",
        default=FRONT,
        metavar="front|N,M,...",
        help="the study's feasible Pareto front (default) or trial numbers; reused twins fold into one network",
    )
    fin.add_argument("--seeds", type=int_arg, default=3, help="training runs per network (default: 3)")
    fin.add_argument("--epochs", type=int_arg, help="epochs per run (default: the study's recipe)")
    fin.add_argument("--storage", help="an Optuna storage URL (default: the study file's)")
    fin.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the study file's)")
    fin.add_argument("--out", default="reports", help="folder for the HTML report (default: reports)")
    fin.add_argument("--no-report", action="store_true", help="do not rewrite the HTML report")
    fin.set_defaults(func=cmd_finalize)
