"""The Optuna sampler a study file's `sampler` names (the names and what each does: studyfile.SAMPLERS)."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.spec.studyfile import StudyFile


def make_sampler(sf: StudyFile) -> optuna.samplers.BaseSampler:
    seed = sf.seed
    if sf.sampler == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=8
        )
    if sf.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if sf.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if sf.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return GridToTheEnd(sf.space.grid(), seed=seed)


class GridToTheEnd(optuna.samplers.GridSampler):
    """Optuna's grid sampler, with the end of the grid left to the runner.

    Optuna's calls `study.stop()` after the last grid point, which works only inside
    `study.optimize()`; our workers ask for trials themselves, so they stop claiming once every
    point of the grid has been taken (`nas.search.run.runner`) and the sampler never stops the study.
    """

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        return None
