"""A study: everything one search needs (space, data, recipe, budget, sampler, storage), validated.

A study is reproducible from its study file alone (`nas.search.spec.studyfile_reader` reads the TOML);
each section is a frozen dataclass checked on construction, so a study that exists can run.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.arch.external import resolve_baseline
from nas.arch.modes import MODES
from nas.checks import bad_value, is_int, is_number
from nas.data.datasets import DataConfig
from nas.errors import UsageError
from nas.search.spec.objectives import ACCURACY, COSTS_BEFORE_TRAINING, FLOPS, OBJECTIVES, PARAMS
from nas.search.spec.prescreen import Prescreen
from nas.search.spec.space import SearchSpace
from nas.search.spec.stopping import METHODS
from nas.search.spec.tomlfile import jsonable
from nas.train.recipe import Recipe

SAMPLERS: dict[str, str] = {
    "tpe": "Tree-structured Parzen Estimator: Optuna's default, any number of objectives, conditional knobs",
    "nsga2": "NSGA-II genetic algorithm: spreads trials along a multi-objective Pareto front",
    "gp": "Gaussian-process Bayesian optimisation: sample-efficient for small budgets",
    "random": "independent uniform sampling: the baseline every sampler should beat",
    "grid": "every combination of the space's choices (no conditions, no float ranges)",
}
# Ablation cost matches: name -> what every mode is widened or narrowed to equal.
ABLATION_MATCHES: dict[str, str] = {
    PARAMS: "the parameter count",
    FLOPS: "the FLOPs per image (fvcore convention)",
}
# DataConfig.val_fraction = 0 (no validation split) is for `nas finalize`'s final training; a search needs one.
SEARCH_VAL_FRACTION = "a number in (0, 1) is required: a search needs a validation split"
# A study name names its folder under runs/: no separators, no '..', no markup.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _str_tuple(owner: str, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise bad_value(owner, name, value, "a list of strings is required")
    if len(set(value)) != len(value):
        raise bad_value(owner, name, value, "every entry must be unique")
    return tuple(value)


def baseline_problem(name: str) -> str | None:
    """Why `name` is not a baseline (a preset or torchvision:<classification model>), or None."""
    try:
        resolve_baseline(name, in_channels=3, num_classes=10)
    except ValueError as err:
        return str(err)
    return None


@dataclass(frozen=True)
class Constraints:
    """Budgets a trial must meet; a config over one is rejected before it trains."""

    max_params: int | None = None
    max_flops: float | None = None

    def __post_init__(self) -> None:
        if self.max_params is not None and (not is_int(self.max_params) or self.max_params < 1):
            raise bad_value("Constraints", "max_params", self.max_params, "an integer > 0 is required")
        if self.max_flops is not None:
            if not is_number(self.max_flops) or self.max_flops <= 0:
                raise bad_value("Constraints", "max_flops", self.max_flops, "a number > 0 is required")
            object.__setattr__(self, "max_flops", float(self.max_flops))

    def broken(self, *, params: int, flops: float) -> tuple[str, ...]:
        """The budgets (max_params, max_flops) a network with these counts breaks: the one rule for rejecting a
        trial before it trains and for ranking a pre-screen's proposal last."""
        over = []
        if self.max_params is not None and params > self.max_params:
            over.append("max_params")
        if self.max_flops is not None and flops > self.max_flops:
            over.append("max_flops")
        return tuple(over)


@dataclass(frozen=True)
class Pruning:
    """Early stopping of trials that will not reach the front: the rule (nas.search.spec.stopping) and its settings.

    Multi-objective studies use `method`; single-objective ones Optuna's median pruner unless it is "none".
    """

    # One of nas.search.spec.stopping.METHODS. "none" by default: replayed against a recorded learning-curve table
    # (benchmarks/search_efficiency.py, RESULTS.md), neither rule reached TPE's front per unit of compute.
    method: str = "none"
    min_epochs: int = 1  # never stop a trial before this many epochs (MO-ASHA's first rung)
    eta: int = 3  # MO-ASHA: rungs at min_epochs x eta^i; the top 1/eta of a rung continue
    # Pareto-aware stop: accuracy allowance before a trial counts as beaten, or "auto": no allowance, the
    # other trial's accuracy taken at its 95% Wilson lower bound on the validation split (its resolution)
    margin: float | str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise bad_value("Pruning", "method", self.method, f"choose one of {', '.join(METHODS)}")
        if not is_int(self.min_epochs) or self.min_epochs < 1:
            raise bad_value("Pruning", "min_epochs", self.min_epochs, "an integer >= 1 is required")
        if not is_int(self.eta) or self.eta < 2:
            raise bad_value("Pruning", "eta", self.eta, "an integer >= 2 is required")
        margin = self.margin
        if margin != "auto":
            if isinstance(margin, str) or not is_number(margin) or not 0 <= margin <= 1:
                raise bad_value("Pruning", "margin", self.margin, 'a number in [0, 1] or "auto" is required')
            object.__setattr__(self, "margin", float(self.margin))


@dataclass(frozen=True)
class Ablation:
    """The connectivity ablation (`nas ablate`): every mode matched to one cost, several seeds."""

    modes: tuple[str, ...]
    match: str  # one of ABLATION_MATCHES
    target: float  # the cost every mode is widened or narrowed to
    tolerance: float = 0.05  # relative
    seeds: int = 3
    base: str | None = None  # search-space file (absolute path) of the base config; None: the study's space

    def __post_init__(self) -> None:
        modes = _str_tuple("Ablation", "modes", self.modes)
        if not modes or any(m not in MODES for m in modes):
            raise bad_value("Ablation", "modes", self.modes, f"a non-empty list of {sorted(MODES)} is required")
        object.__setattr__(self, "modes", modes)
        if self.match not in ABLATION_MATCHES:
            raise bad_value("Ablation", "match", self.match, f"choose one of {sorted(ABLATION_MATCHES)}")
        if not is_number(self.target) or self.target <= 0:
            raise bad_value("Ablation", "target", self.target, "a number > 0 is required")
        if not is_number(self.tolerance) or not 0 < self.tolerance < 1:
            raise bad_value("Ablation", "tolerance", self.tolerance, "a number in (0, 1) is required")
        if not is_int(self.seeds) or self.seeds < 1:
            raise bad_value("Ablation", "seeds", self.seeds, "an integer >= 1 is required")
        if self.base is not None and (not isinstance(self.base, str) or not self.base):
            raise bad_value("Ablation", "base", self.base, "a search-space name or path is required")
        object.__setattr__(self, "target", float(self.target))
        object.__setattr__(self, "tolerance", float(self.tolerance))


MAX_SEED = 2**32 - 1  # Optuna's samplers seed numpy, which takes no more

# The fields of a study file's [recipe] and [data] that change how a trial runs, not what it measures: a resumed
# study may change them freely, and they are left out of what makes two trainings (or final runs) comparable.
EXECUTION_ONLY = {
    "recipe": ("num_workers", "eval_batch_size"),
    "data": ("root", "num_workers", "max_resident_gb", "download"),
}


@dataclass(frozen=True)
class StudyFile:
    """One search, as its study file describes it; validated on construction."""

    path: str  # the file it came from (absolute)
    name: str  # names the run folder runs/<name>
    space: SearchSpace
    objectives: tuple[str, ...]  # val_accuracy first, then names of nas.search.spec.objectives.OBJECTIVES
    sampler: str  # one of SAMPLERS
    trials: int
    time_limit_minutes: float | None = None
    seed: int = 0
    storage: str | None = None  # an Optuna storage URL; None: the journal file runs/<name>/journal.log
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    baselines: tuple[str, ...] = ()  # presets or torchvision:<model>, trained as fixed trials
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    recipe: Recipe = dataclasses.field(default_factory=Recipe)
    constraints: Constraints = dataclasses.field(default_factory=Constraints)
    pruning: Pruning = dataclasses.field(default_factory=Pruning)
    ablation: Ablation | None = None
    prescreen: Prescreen | None = None  # each trial trains the best of several sampler proposals by a proxy
    trial_timeout_minutes: float | None = None  # a trial running longer is stopped and recorded as failed
    heartbeat_seconds: int = 30  # running trials beat this often; silent for 4 beats means the worker died

    def __post_init__(self) -> None:
        parts: dict[str, Any] = dict(
            path=str, space=SearchSpace, data=DataConfig, recipe=Recipe, constraints=Constraints, pruning=Pruning
        )
        if self.ablation is not None:
            parts["ablation"] = Ablation
        if self.prescreen is not None:
            parts["prescreen"] = Prescreen
        for name, cls in parts.items():
            if not isinstance(getattr(self, name), cls):
                raise bad_value("StudyFile", name, getattr(self, name), f"a {cls.__name__} is required")
        if self.data.val_fraction == 0:  # DataConfig allows it for the final training of `nas finalize` only
            raise bad_value("StudyFile", "data.val_fraction", 0, SEARCH_VAL_FRACTION)
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or ".." in self.name:
            raise bad_value(
                "StudyFile",
                "name",
                self.name,
                "1 to 64 letters, digits, '-', '_' or '.' are required, starting with a letter, digit or '_', "
                "without '..'",
            )
        objectives = _str_tuple("StudyFile", "objectives", self.objectives)
        others = [o for o in OBJECTIVES if o != ACCURACY]
        if not objectives or objectives[0] != ACCURACY:
            raise bad_value("StudyFile", "objectives", self.objectives, f"{ACCURACY} first, then any of {others}")
        unknown = [o for o in objectives[1:] if o not in others]
        if unknown:
            raise bad_value("StudyFile", "objectives", self.objectives, f"{unknown[0]!r} is not one of {others}")
        for name in objectives:
            for switch in OBJECTIVES[name].requires:
                if not getattr(self.recipe, switch):
                    raise bad_value("StudyFile", "objectives", self.objectives, f"{name} needs recipe.{switch} = true")
        object.__setattr__(self, "objectives", objectives)
        if self.sampler not in SAMPLERS:
            raise bad_value("StudyFile", "sampler", self.sampler, f"choose one of {', '.join(SAMPLERS)}")
        if self.sampler == "grid":
            try:
                self.space.grid()
            except ValueError as exc:
                raise bad_value("StudyFile", "sampler", self.sampler, str(exc)) from None
        if not is_int(self.trials) or self.trials < 1:
            raise bad_value("StudyFile", "trials", self.trials, "an integer >= 1 is required")
        if self.time_limit_minutes is not None:
            if not is_number(self.time_limit_minutes) or self.time_limit_minutes <= 0:
                raise bad_value("StudyFile", "time_limit_minutes", self.time_limit_minutes, "a number > 0 is required")
            object.__setattr__(self, "time_limit_minutes", float(self.time_limit_minutes))
        if self.trial_timeout_minutes is not None:
            if not is_number(self.trial_timeout_minutes) or self.trial_timeout_minutes <= 0:
                raise bad_value(
                    "StudyFile", "trial_timeout_minutes", self.trial_timeout_minutes, "a number > 0 is required"
                )
            object.__setattr__(self, "trial_timeout_minutes", float(self.trial_timeout_minutes))
        if not is_int(self.heartbeat_seconds) or self.heartbeat_seconds < 1:
            raise bad_value("StudyFile", "heartbeat_seconds", self.heartbeat_seconds, "an integer >= 1 is required")
        if not is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise bad_value("StudyFile", "seed", self.seed, f"an integer from 0 to {MAX_SEED} is required")
        if self.storage is not None and (not isinstance(self.storage, str) or "://" not in self.storage):
            journal = '"" for the journal file runs/<name>/journal.log'
            raise bad_value("StudyFile", "storage", self.storage, f"an Optuna storage URL (sqlite:///...) or {journal}")
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise bad_value("StudyFile", "device", self.device, "auto, cpu, cuda or cuda:N is required")
        self._check_prescreen()
        baselines = _str_tuple("StudyFile", "baselines", self.baselines)
        for baseline in baselines:
            problem = baseline_problem(baseline)
            if problem:
                raise bad_value("StudyFile", "baselines", self.baselines, problem)
        object.__setattr__(self, "baselines", baselines)

    def _check_prescreen(self) -> None:
        if self.prescreen is None:
            return
        if self.sampler == "grid":
            raise bad_value(
                "StudyFile",
                "sampler",
                "grid",
                "a sampler other than grid with [prescreen]: a grid trains every network",
            )
        if self.prescreen.select == "pareto" and not self.prescreen_costs():
            costs = " or ".join(COSTS_BEFORE_TRAINING)
            raise bad_value(
                "StudyFile", "prescreen.select", "pareto", f'"proxy", or {costs} among the objectives to trade against'
            )

    def prescreen_costs(self) -> tuple[str, ...]:
        """The cost objectives a pre-screen knows before training (params, flops), in objective order."""
        return tuple(name for name in self.objectives if name in COSTS_BEFORE_TRAINING)

    def directions(self) -> list[str]:
        """Optuna directions, in objective order."""
        return [OBJECTIVES[name].direction for name in self.objectives]

    def run_dir(self, root: Path = Path("runs")) -> Path:
        """root/<name>: where the journal, checkpoints and reports of this study go."""
        folder = Path(root) / self.name
        if folder.resolve().parent != Path(root).resolve():
            raise UsageError(
                f"study name {self.name!r} would leave the run folder {root}",
                owner="StudyFile",
                field="name",
                value=self.name,
                allowed=f"a name inside {root}",
            )
        return folder

    def storage_url(self, root: Path = Path("runs")) -> str:
        """The explicit storage URL, else the journal file path (the runner opens a JournalStorage)."""
        return self.storage if self.storage is not None else str(self.run_dir(root) / "journal.log")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, for the study's provenance."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["space"] = self.space.to_dict()
        for name in ("data", "recipe", "constraints", "pruning", "ablation", "prescreen"):
            value = getattr(self, name)
            data[name] = dataclasses.asdict(value) if value is not None else None
        result: dict[str, Any] = jsonable(data)
        return result


__all__ = [
    "ABLATION_MATCHES",
    "SAMPLERS",
    "SEARCH_VAL_FRACTION",
    "Ablation",
    "Constraints",
    "Pruning",
    "StudyFile",
    "baseline_problem",
]
