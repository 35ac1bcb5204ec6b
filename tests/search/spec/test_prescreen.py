"""The pre-screen's rules and its [prescreen] table: which proposal a trial trains, and every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.search.spec.prescreen import MAX_POOL, Prescreen, Proposal, by_pareto, by_proxy
from nas.search.spec.studyfile_reader import StudyFileError, load_study_file
from nas.train.proxies import PROXIES


def test_by_proxy_takes_the_best_score_and_the_earlier_proposal_on_a_tie() -> None:
    proposals = [Proposal(1.0, (5.0,)), Proposal(3.0, (9.0,)), Proposal(2.0, (1.0,)), Proposal(3.0, (2.0,))]
    assert by_proxy(proposals) == 1


def test_a_proposal_over_budget_or_already_in_the_study_or_unscored_goes_last() -> None:
    best_but_over = Proposal(9.0, (1.0,), over_budget=True)
    best_but_known = Proposal(8.0, (1.0,), known=True)
    unscored = Proposal(None, (1.0,))
    assert by_proxy([best_but_over, best_but_known, unscored, Proposal(1.0, (1.0,))]) == 3
    # without a scored new one, a new unscored one beats a known one; without a new one, a known one within budget
    assert by_proxy([best_but_over, best_but_known, unscored]) == 2
    assert by_proxy([best_but_over, best_but_known]) == 1
    assert by_proxy([best_but_over, Proposal(10.0, (1.0,), over_budget=True)]) == 1  # all over: the best of them


def test_by_pareto_keeps_the_samplers_earliest_proposal_that_no_other_dominates() -> None:
    dominated = Proposal(1.0, (10.0,))  # the sampler's first, but proposal 1 scores higher and costs less
    assert by_pareto([dominated, Proposal(2.0, (5.0,)), Proposal(3.0, (20.0,))]) == 1
    undominated_first = Proposal(1.0, (1.0,))  # the cheapest: no other beats it on both
    assert by_pareto([undominated_first, Proposal(2.0, (5.0,)), Proposal(3.0, (20.0,))]) == 0
    # two costs: beaten on score and params but cheaper in FLOPs, so not dominated
    assert by_pareto([Proposal(1.0, (10.0, 1.0)), Proposal(2.0, (5.0, 9.0))]) == 0
    assert by_pareto([Proposal(5.0, (1.0,), known=True), Proposal(1.0, (9.0,))]) == 1


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("proxy", "synflw", "choose one of params, flops, synflow"),
        ("pool", 1, f"an integer from 2 to {MAX_POOL}"),
        ("pool", 2.5, f"an integer from 2 to {MAX_POOL}"),
        ("select", "best", "choose one of proxy, pareto"),
        ("batch_size", 2, "an integer >= 4"),
    ],
)
def test_a_bad_setting_names_its_field_value_and_what_is_allowed(field: str, value: object, allowed: str) -> None:
    settings: dict[str, object] = {"proxy": "snip", field: value}
    with pytest.raises(ValueError, match=f"Prescreen.{field} = .* is invalid: {allowed}"):
        Prescreen(**settings)  # type: ignore[arg-type]


def test_every_proxy_can_prescreen() -> None:
    assert [Prescreen(proxy=name).proxy for name in PROXIES] == list(PROXIES)
    assert Prescreen(proxy="snip") == Prescreen(proxy="snip", pool=64, select="proxy", batch_size=64)


def study(
    tmp_path: Path, prescreen: str, *, sampler: str = "tpe", objectives: str = '["val_accuracy", "flops"]'
) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        f'[study]\nname = "s"\nspace = "tabular_digits"\ntrials = 3\nsampler = "{sampler}"\n'
        f"objectives = {objectives}\n\n[prescreen]\n{prescreen}\n"
    )
    return path


def test_a_study_file_reads_its_prescreen_table(tmp_path: Path) -> None:
    sf = load_study_file(study(tmp_path, 'proxy = "naswot"\npool = 16\nselect = "pareto"'))
    assert sf.prescreen == Prescreen(proxy="naswot", pool=16, select="pareto")
    assert sf.prescreen_costs() == ("flops",)
    assert sf.to_dict()["prescreen"] == {"proxy": "naswot", "pool": 16, "select": "pareto", "batch_size": 64}
    assert load_study_file(study(tmp_path, 'proxy = "snip"')).prescreen == Prescreen(proxy="snip")


@pytest.mark.parametrize(
    ("prescreen", "kwargs", "message"),
    [
        ('proxy = "snp"', {}, 'prescreen.proxy = "snp" is invalid: choose one of params, flops, synflow'),
        ("pool = 8", {}, "prescreen.proxy is missing: one of params, flops, synflow"),
        ('proxy = "snip"\nsize = 8', {}, "unknown key prescreen.size"),
        ('proxy = "snip"\npool = "8"', {}, 'prescreen.pool = "8" is invalid'),
        (
            'proxy = "snip"\nselect = "pareto"',
            {"objectives": '["val_accuracy"]'},
            'prescreen.select = "pareto" is invalid: "proxy", or flops or params among the objectives',
        ),
    ],
)
def test_a_bad_prescreen_table_names_the_file_and_the_key(
    tmp_path: Path, prescreen: str, kwargs: dict[str, str], message: str
) -> None:
    path = study(tmp_path, prescreen, **kwargs)
    with pytest.raises(StudyFileError, match=f"{path}: {message}"):
        load_study_file(path)


def test_a_grid_study_cannot_prescreen(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(
        '[study]\nname = "g"\nspace = "connectivity_ablation"\ntrials = 3\nsampler = "grid"\n\n'
        '[prescreen]\nproxy = "snip"\n'
    )
    with pytest.raises(StudyFileError, match=r'study\.sampler = "grid" is invalid: a sampler other than grid'):
        load_study_file(path)
