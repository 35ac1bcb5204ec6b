"""Generations of a study: growing a search space without losing what was trained.

Optuna refuses a categorical knob whose choices changed (optuna issues #372, #2199, #2328): a study resumed
with a new connectivity mode in its space failed every trial. So when a resumed study's space changed in a way
Optuna cannot follow, and the user accepted the change (`--allow-changed space`), the study continues as a new
generation: an Optuna study named `<study>@<n>` created with the new space, into which every finished trial whose
network the new space can express is copied (values, attributes, times; its parameters under the new
distributions), so that nothing is retrained and the sampler learns from them. Every command that opens a study
by its file opens its newest generation; a copied trial says where it came from (`records.CARRIED_FROM`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState

from nas.search.results import optuna_internals, records
from nas.search.results.study_attrs import generation_name, generation_number
from nas.search.spec.space import SearchSpace

_CARRIED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.WAITING)  # a re-run, too


def current_name(storage: optuna.storages.BaseStorage, base: str) -> str:
    """The newest generation of the study `base` in `storage` (`base` itself when it has none)."""
    pattern = re.compile(re.escape(base) + r"@(\d+)")
    numbers = [1] + [int(m[1]) for s in storage.get_all_studies() if (m := pattern.fullmatch(s.study_name))]
    return generation_name(base, max(numbers))


def base_name(name: str) -> str:
    """The study a generation belongs to: `study` for `study@3`."""
    return re.sub(r"@\d+$", "", name)


def newer_generation(study: optuna.Study) -> str | None:
    """The newest generation's name when it is newer than `study` (the space grew since `study` was opened), else
    None: a worker started before the growth would go on training into the old generation."""
    newest = current_name(optuna_internals.storage_of(study), base_name(study.study_name))
    return newest if generation_number(newest) > generation_number(study.study_name) else None


def incompatible_knobs(study: optuna.Study, space: SearchSpace) -> list[str]:
    """The knobs whose new distribution Optuna cannot take for the study's trials (changed categorical choices,
    another kind of distribution): each would fail every trial that samples it."""
    new = space.distributions()
    old: dict[str, BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False):
        old.update(trial.distributions)
    changed = []
    for name, dist in old.items():
        if name not in new:
            continue
        try:
            check_distribution_compatibility(dist, new[name])
        except ValueError:
            changed.append(name)
    return sorted(changed)


@dataclass(frozen=True)
class Carried:
    """What a new generation took from the last one."""

    previous: str
    carried: int  # trials copied
    left: int  # finished or waiting trials whose network the new space cannot express


def _expressible(trial: FrozenTrial, space: SearchSpace) -> bool:
    """Whether the new space can draw this trial's network: every parameter a knob of it that takes the value."""
    knobs = {k.name: k for k in space.knobs}
    return all(name in knobs and knobs[name].can_take(value) for name, value in trial.params.items())


def _renumbered(attrs: dict[str, Any], numbers: dict[int, int], keys: tuple[str, ...]) -> dict[str, Any]:
    """`attrs` with the trial numbers under `keys` mapped to the new generation's (dropped when not carried)."""
    out = dict(attrs)
    for key in keys:
        value = out.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            if value in numbers:
                out[key] = numbers[value]
            else:
                del out[key]
        elif isinstance(value, list):
            out[key] = [numbers[n] for n in value if n in numbers]
    return out


def carry_trials(previous: optuna.Study, new: optuna.Study, space: SearchSpace) -> Carried:
    """Copy every finished or waiting (re-queued) trial of `previous` whose network `space` can express into `new`,
    in order; running ones stay with their workers in `previous`."""
    trials = previous.get_trials(deepcopy=False, states=_CARRIED_STATES)
    kept = [t for t in trials if _expressible(t, space)]
    numbers = {t.number: i for i, t in enumerate(kept, start=len(new.get_trials(deepcopy=False)))}
    distributions = space.distributions()
    generation = generation_number(previous.study_name)
    for t in kept:
        user = _renumbered(t.user_attrs, numbers, (records.REUSED_FROM,))
        user[records.CARRIED_FROM] = t.user_attrs.get(
            records.CARRIED_FROM, {"study": previous.study_name, "trial": t.number, "generation": generation}
        )
        system = _renumbered(t.system_attrs, numbers, (records.FAILED_TRIAL, records.RETRY_HISTORY))
        # A new generation stores constraints as Optuna's list: a trial carried from a study made before is converted.
        system = optuna_internals.as_constraint_list(system, optuna_internals.named_constraints(t))
        new.add_trial(
            FrozenTrial(
                number=numbers[t.number],
                state=t.state,
                value=None,
                values=t.values,
                datetime_start=t.datetime_start,
                datetime_complete=t.datetime_complete,
                params=t.params,
                distributions={name: distributions[name] for name in t.params},
                user_attrs=user,
                system_attrs=system,
                intermediate_values=t.intermediate_values,
                trial_id=0,
            )
        )
    return Carried(previous.study_name, len(kept), len(trials) - len(kept))
