"""The Optuna search for the walk-forward's defaults, in batches, resumable from its storage.

Trials are asked in batches of BATCH with the study's history so far and a sampler seeded by the
seed and the batch's number, evaluated wherever the runner puts them (each a task), then told. So a
search gives the same trials for the same seed on any number of workers, and a search interrupted
mid-batch resumes where it stopped: the trials asked but not told are evaluated with the parameters
the storage holds, and the batches go on from there, as if it had never stopped.

The study lives in an RDB storage (core.research.search_storage): SQLite beside the project's own
database on one machine, PostgreSQL (schema `optuna`) when several machines share one search.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

from tqdm import tqdm

from core.research.selection import Candidate, SliceScore, score
from core.trading.types import RiskSettings

BATCH = 8
CHOICES = {
    "stop_loss": (0.0, 0.03, 0.05, 0.08),
    "take_profit": (0.0, 0.04, 0.08),
    "trailing_stop": (0.0, 0.02, 0.03, 0.05),
    "cooldown_hours": (0.0, 3.0, 6.0, 12.0),
    "max_hold_hours": (6.0, 12.0, 24.0, 48.0),
    "sizing": ("fixed", "kelly"),
}
RANGES = {"entry_margin": (0.0, 0.02), "kelly_fraction": (0.1, 0.5)}


@dataclass(frozen=True)
class SearchOutcome:
    best: Candidate
    score: float
    trials: int  # complete trials in the study
    resumed: int  # of them, those an earlier run had completed
    study: str


def distributions(labels: int) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {"entry_margin": FloatDistribution(*RANGES["entry_margin"])}
    out |= {name: CategoricalDistribution(list(values)) for name, values in CHOICES.items()}
    out["kelly_fraction"] = FloatDistribution(*RANGES["kelly_fraction"])
    if labels > 1:
        out["label"] = IntDistribution(0, labels - 1)
    return out


def candidate(base: RiskSettings, params: dict) -> Candidate:
    return Candidate(int(params.get("label", 0)), replace(base, **{k: v for k, v in params.items() if k != "label"}))


def search(base: RiskSettings, labels: int, evaluate: Callable[[Sequence[Candidate]], list[list[SliceScore]]],
           trials: int, min_exposure: float, seed: int, progress: bool = False, *, storage=None,
           study: str = "walkforward") -> SearchOutcome:
    """`trials` trials in all in the study (those it holds count); `evaluate` scores a batch of
    candidates on every validation slice. `storage`: a SearchStorage, or None for memory only."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    state = optuna.trial.TrialState
    found = optuna.create_study(study_name=study, storage=storage.optuna() if storage else None,
                                direction="maximize", load_if_exists=True)
    space = distributions(labels)
    held = found.get_trials(deepcopy=False)
    resumed = sum(t.state == state.COMPLETE for t in held)
    bar = tqdm(total=trials, initial=min(resumed, trials), desc="search", unit="trial", disable=not progress)
    pending = [t for t in held if t.state == state.RUNNING]  # asked by a run that stopped before telling
    if pending:
        _tell(found, [t.number for t in pending], evaluate([candidate(base, t.params) for t in pending]),
              min_exposure, bar)
    while (asked := len(found.get_trials(deepcopy=False))) < trials:
        found.sampler = optuna.samplers.TPESampler(seed=seed * 100_003 + asked // BATCH)
        batch = [found.ask(space) for _ in range(min(BATCH, trials - asked))]
        _tell(found, [t.number for t in batch], evaluate([candidate(base, t.params) for t in batch]),
              min_exposure, bar)
    bar.close()
    complete = [t for t in found.get_trials(deepcopy=False) if t.state == state.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number))
    return SearchOutcome(candidate(base, best.params), float(best.value), len(complete), resumed, study)


def _tell(study, numbers: list[int], scores: list[list[SliceScore]], min_exposure: float, bar) -> None:
    for number, slices in zip(numbers, scores):
        value = score(slices, min_exposure)
        study.tell(number, value if value != float("-inf") else -1e9)
        bar.update()
