"""Which rows does each walk-forward fold learn from, choose on and trade? Folds as split plans.

A fold trades one test period (e.g. three months). Before it, separated by purges of horizon + 24
candles (no window and no label crosses a boundary, models/dataset.py): a validation slice (early
stopping, calibration, the choice of the decision parameters), a head-training span and, before
that, the LSTM's span. Expanding windows start at the data's first candle; rolling windows give the LSTM only
the `train_months` before the head's span. Folds in one `lstm_every` group share one LSTM, fitted at the group's
first fold (the heads are refitted at every fold).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models.dataset import SplitPlan


@dataclass(frozen=True)
class Fold:
    index: int
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    plan: SplitPlan  # the head's split: head_train | validation | test
    lstm_plan: SplitPlan  # the LSTM's split (its group's first fold)
    group: int

    @property
    def label(self) -> str:
        return f"{self.test_start:%Y-%m-%d}..{(self.test_end - pd.Timedelta(hours=1)):%Y-%m-%d}"


def make_folds(first: pd.Timestamp, last: pd.Timestamp, *, start: pd.Timestamp, horizon: int,
               interval_seconds: int = 3600, test_months: int = 3, validation_months: int = 6,
               head_months: int = 12, window: str = "expanding", train_months: int = 36,
               lstm_every: int = 4, min_lstm_months: int = 4) -> list[Fold]:
    """Consecutive test periods from `start` to the end of the data (`last`, the last candle's open)."""
    if window not in ("expanding", "rolling"):
        raise ValueError(f"window must be expanding or rolling, got {window!r}")
    if test_months < 1 or validation_months < 1 or head_months < 1 or lstm_every < 1:
        raise ValueError("test, validation and head spans and lstm_every must be at least 1")
    end = last + pd.Timedelta(seconds=interval_seconds)
    folds, lstm_plan = [], None
    t0 = pd.Timestamp(start)
    while t0 < end:
        t1 = min(t0 + pd.DateOffset(months=test_months), end)
        validation_start = t0 - pd.DateOffset(months=validation_months)
        earliest = first + pd.DateOffset(months=min_lstm_months)
        head_start = max(validation_start - pd.DateOffset(months=head_months), earliest)
        if head_start >= validation_start:
            raise ValueError(f"the data start {first:%Y-%m-%d} too late for a first test period at {t0:%Y-%m-%d}: "
                             f"it needs {min_lstm_months + 1 + validation_months} months of history before it")
        train_start = head_start - pd.DateOffset(months=train_months) if window == "rolling" else None
        index = len(folds)
        plan = SplitPlan(head_start, validation_start, t0, horizon, interval_seconds, train_start, t1)
        if index % lstm_every == 0:
            lstm_plan = plan
        elif lstm_plan is not None:  # the group keeps its LSTM: its head span starts where the LSTM's ended
            plan = SplitPlan(lstm_plan.head_start, validation_start, t0, horizon, interval_seconds, train_start, t1)
        folds.append(Fold(index, t0, t1, plan, lstm_plan, index // lstm_every))
        t0 = t1
    return folds
