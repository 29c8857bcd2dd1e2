"""How are the decision parameters chosen, and on what? On validation slices only, never on a test period.

Every fold has a validation slice, predicted by that fold's own model (which never learnt from it).
A candidate (a set of decision parameters, and the label its model was trained on) is simulated on
each slice through the real trading cycle, once; its score on a set of slices is the median slice
Sharpe, less a penalty when it trades too little or is too rarely invested. Fold k trades with the
candidate that scores best on the slices of folds 1..k, all of them before its test period. The
shipped defaults are the same choice on every slice: what the next fold would trade with.

The candidate grid is fixed in advance. The search (core.research.search, Optuna) explores a wider space for the defaults
only: its trials see every slice, so a search result is never used to trade a reported test period.
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, fields, replace
from typing import Sequence

from core.trading.types import RiskSettings

MIN_TRADES_PER_SLICE = 5
# Each axis lists the settings one value of it changes; a candidate is one value of every axis.
GRID: dict[str, tuple[dict, ...]] = {
    "entry_margin": tuple({"entry_margin": m} for m in (0.0025, 0.005, 0.0075, 0.01, 0.015)),
    "exit": ({"stop_loss": 0.0, "trailing_stop": 0.0},      # the decision rule's own exits only
             {"stop_loss": 0.05, "trailing_stop": 0.0},     # and a 5% stop-loss
             {"stop_loss": 0.0, "trailing_stop": 0.03}),    # or a 3% trailing stop
    "cooldown_hours": ({"cooldown_hours": 0.0}, {"cooldown_hours": 6.0}),
}


@dataclass(frozen=True)
class Candidate:
    label: int  # which label (and so which models) it trades on
    settings: RiskSettings

    def describe(self, base: RiskSettings) -> dict:
        out = {f.name: getattr(self.settings, f.name) for f in fields(self.settings)
               if getattr(self.settings, f.name) != getattr(base, f.name)}
        return {"label": self.label, **out}


@dataclass(frozen=True)
class SliceScore:
    sharpe: float
    trades: int
    exposure: float
    total_return: float

    @classmethod
    def of(cls, metrics: dict) -> "SliceScore":
        return cls(float(metrics["sharpe"] or 0.0), int(metrics["trades"]), float(metrics["exposure"]),
                   float(metrics["total_return"]))


def grid(base: RiskSettings, labels: int) -> list[Candidate]:
    """Every label times every combination of the grid's axes, in a fixed order."""
    out = []
    for label in range(labels):
        for values in itertools.product(*GRID.values()):
            changes = {k: v for value in values for k, v in value.items()}
            out.append(Candidate(label, replace(base, **changes)))
    return out


def score(slices: Sequence[SliceScore], min_exposure: float) -> float:
    """Median slice Sharpe; up to one Sharpe off for trading less than 5 times a slice, and up to one
    for being invested less than `min_exposure` of the time."""
    if not slices:
        return float("-inf")
    median = statistics.median(s.sharpe for s in slices)
    trades = sum(s.trades for s in slices)
    few = max(0.0, 1.0 - trades / (MIN_TRADES_PER_SLICE * len(slices)))
    exposure = sum(s.exposure for s in slices) / len(slices)
    idle = max(0.0, 1.0 - exposure / min_exposure) if min_exposure > 0 else 0.0
    return median - few - idle


def choose(candidates: Sequence[Candidate], scores: dict[int, list[SliceScore]], upto: int,
           min_exposure: float) -> int:
    """The index of the best candidate on slices 0..upto (inclusive); ties go to the earlier one."""
    best, best_score = 0, float("-inf")
    for i in range(len(candidates)):
        s = score(scores[i][:upto + 1], min_exposure)
        if s > best_score + 1e-12:
            best, best_score = i, s
    return best
