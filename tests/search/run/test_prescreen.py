"""A pre-screened study: each trial trains the proposal the rule picks, the other proposals never become trials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.data.datasets import DataConfig, load_data
from nas.errors import UsageError
from nas.report.data import compute_report_data
from nas.report.export import trials_frame
from nas.search.results import records as R
from nas.search.results.trial_record import load_records
from nas.search.run.preflight import check_prescreen
from nas.search.run.prescreen import Prescreener, proxy_scorer
from nas.search.run.storage import open_storage
from nas.search.spec.prescreen import Prescreen
from nas.search.spec.samplers import make_sampler
from nas.search.spec.studyfile import Constraints
from nas.search.spec.studyfile_reader import load_study_file
from nas.train.proxies import score_network
from tests.commands import nas_here

INPUT = (1, 8, 8)


def study_file(tmp_path: Path, prescreen: str = 'proxy = "snip"\npool = 8', trials: int = 4) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        f'[study]\nname = "p"\nspace = "tabular_digits"\nobjectives = ["val_accuracy", "flops"]\ntrials = {trials}\n'
        'seed = 5\ndevice = "cpu"\n\n[data]\nname = "digits"\n\n[recipe]\nepochs = 1\nmeasure_latency = false\n\n'
        f"[prescreen]\n{prescreen}\n"
    )
    return path


class Recorder:
    """Scores a network by its parameter count (closed form) and remembers what it scored."""

    def __init__(self) -> None:
        self.scored: list[ArchConfig] = []

    def __call__(self, net: ArchConfig) -> tuple[float | None, float]:
        self.scored.append(net)
        return float(estimate(net, input_size=INPUT).params), 0.5


def prescreener(tmp_path: Path, scorer: Recorder, **prescreen: object) -> Prescreener:
    sf = load_study_file(study_file(tmp_path))
    sf = dataclasses.replace(sf, prescreen=dataclasses.replace(Prescreen(proxy="params", pool=8), **prescreen))
    return Prescreener(sf, input_size=INPUT, num_classes=10, score=scorer)


def new_study(p: Prescreener) -> optuna.Study:
    return optuna.create_study(directions=p.sf.directions(), sampler=make_sampler(p.sf))


def test_the_choice_is_the_best_scored_proposal_and_each_network_is_scored_once(tmp_path: Path) -> None:
    scorer = Recorder()
    p = prescreener(tmp_path, scorer)
    choice = p.choose(new_study(p))
    best = max(estimate(n, input_size=INPUT).params for n in scorer.scored)
    assert choice.score == best == estimate(choice.network, input_size=INPUT).params
    assert choice.proposals == 8 and choice.scored == len(scorer.scored) == len({n.arch_hash() for n in scorer.scored})
    assert choice.score_seconds == 0.5 * choice.scored
    assert p.network(choice.params) == choice.network  # the params queue exactly this network
    again = p.choose(new_study(p))  # a network proposed before keeps its score: only new ones cost
    assert again.score_seconds == 0.5 * again.scored and len(scorer.scored) == choice.scored + again.scored


def test_the_same_study_and_seed_give_the_same_choice(tmp_path: Path) -> None:
    a, b = prescreener(tmp_path, Recorder()), prescreener(tmp_path, Recorder())
    assert a.choose(new_study(a)).params == b.choose(new_study(b)).params


def test_a_network_the_study_has_is_not_chosen_again_nor_one_over_budget(tmp_path: Path) -> None:
    p = prescreener(tmp_path, Recorder(), pool=40)
    study = new_study(p)
    first = p.choose(study)
    study.enqueue_trial(first.params)
    trial = study.ask()
    p.sf.space.suggest(trial)
    study.tell(trial, [0.5, 1.0])
    fresh = prescreener(tmp_path, Recorder(), pool=40)  # same draws: it would propose the same networks
    assert fresh.choose(study).network != first.network
    limit = int(first.score or 0) - 1  # the biggest network breaks max_params now
    capped = dataclasses.replace(fresh.sf, constraints=Constraints(max_params=limit))
    cheap = Prescreener(capped, input_size=INPUT, num_classes=10, score=Recorder()).choose(new_study(fresh))
    assert cheap.score is not None and cheap.score <= limit


def test_a_prescreened_study_runs_its_budget_of_trials_and_records_each_pick(tmp_path: Path) -> None:
    path = study_file(tmp_path)
    result = nas_here("run", str(path), "--no-report", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    storage = open_storage(str(tmp_path / "runs" / "p" / "journal.log"))
    trials = optuna.load_study(study_name="p", storage=storage).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [
        TrialState.COMPLETE
    ] * 4  # 4 trials of 8 proposals each: proposals are not trials
    sf = load_study_file(path)
    data = load_data(DataConfig(name="digits"))
    for t in trials:
        picked = t.user_attrs[R.PRESCREEN]
        assert (picked["proxy"], picked["select"], picked["proposals"]) == ("snip", "proxy", 8)
        assert 0 <= picked["rank"] < 8 and picked["seconds"] >= picked["score_seconds"] >= 0
        assert picked["scored"] <= 8 and (picked["score_seconds"] > 0) == (picked["scored"] > 0)
        net = ArchConfig.from_dict(t.user_attrs[R.ARCH])
        snip = score_network(network=net, data=data, names=["snip"], seed=sf.seed, device="cpu")["snip"]
        assert snip.value == pytest.approx(picked["score"], rel=1e-5)  # the trained network is the one scored
    data = compute_report_data(study=optuna.load_study(study_name="p", storage=storage))
    assert (
        "4 trials were pre-screened: the network trained was the best by snip of 8 networks the sampler proposed "
        "(the other proposals were never trained, nor trials)"
    ) in data.notes
    assert data.provenance["prescreen"] == {"proxy": "snip", "pool": 8, "select": "proxy", "batch_size": 64}
    row = next(r for r in data.table if r["number"] == 0)  # the trial table's details row, and the export
    assert row["prescreen"].startswith("snip ") and row["prescreen"].endswith(" of 8 proposals (select = proxy)")
    frame = trials_frame(load_records(optuna.load_study(study_name="p", storage=storage)))
    assert list(frame["prescreen_proxy"]) == ["snip"] * 4 and list(frame["prescreen_proposals"]) == [8] * 4
    section = data.proxies
    assert (
        section is not None
        and section.source == "prescreen"
        and section.networks == len({t.user_attrs[R.ARCH_HASH] for t in trials})
    )
    (ranking,) = section.rankings
    assert ranking.proxy == "snip" and ranking.networks == section.networks
    status = nas_here("status", str(path), cwd=tmp_path).stdout.splitlines()
    assert status[2].startswith("  4 trials were pre-screened: the network trained was the best by snip of 8 networks")
    shown = nas_here("show", str(path), "--trial", "0", cwd=tmp_path).stdout.splitlines()[0]
    picked = trials[0].user_attrs[R.PRESCREEN]
    assert f"picked by snip ({picked['score']:.4g}, select = proxy) among 8 proposals, the sampler's #" in shown


def test_a_minibatch_larger_than_the_training_split_is_refused_before_any_trial(tmp_path: Path) -> None:
    path = study_file(tmp_path, 'proxy = "snip"\nbatch_size = 5000')
    sf = load_study_file(path)
    with pytest.raises(UsageError, match=r"prescreen.batch_size = 5000 is more than dataset 'digits' has \(1,293"):
        check_prescreen(sf, load_data(sf.data))
    result = nas_here("run", str(path), "--no-report", cwd=tmp_path)
    assert result.returncode != 0 and "give a smaller batch_size" in result.stderr
    assert not (tmp_path / "runs" / "p" / "journal.log").exists()


def test_a_requeued_trial_keeps_how_it_was_picked() -> None:
    study = optuna.create_study()
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr(R.PRESCREEN, {"proxy": "snip"})
    trial.set_user_attr(R.STATUS, "running")
    frozen = study.get_trials()[0]
    assert R.requeued_attrs(frozen) == {R.PRESCREEN: {"proxy": "snip"}}


def test_a_proposal_too_big_to_score_on_the_device_is_unscored_not_a_failed_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.search.run.prescreen as prescreen_module

    sf = load_study_file(study_file(tmp_path))
    data = load_data(sf.data)
    real = prescreen_module.score_network

    def out_of_memory_when_dense(**kwargs: object) -> object:
        if kwargs["network"].connectivity == "dense":  # type: ignore[attr-defined]
            raise torch.OutOfMemoryError("CUDA out of memory (simulated: the CPU has no device memory to run out of)")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prescreen_module, "score_network", out_of_memory_when_dense)
    score = proxy_scorer(sf=sf, data=data, device="cpu")
    dense = ArchConfig(
        connectivity="dense", block_config=(2, 2), growth_rate=4, stem="cifar", in_channels=1, num_classes=10
    )
    value, seconds = score(dense)
    assert value is None and seconds >= 0
    value, _ = score(dataclasses.replace(dense, connectivity="residual"))
    assert value is not None
