"""What does the model say about one market at one candle? MLSignal and its arithmetic."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import numpy as np


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


CLASSES = ("SELL", "HOLD", "BUY")  # column order of every probability array in this project
SELL, HOLD, BUY = range(3)
DEFAULT_BUY_THRESHOLD = 0.55
DEFAULT_SELL_THRESHOLD = 0.55
DEFAULT_EMERGENCY_THRESHOLD = 0.7


def _check_threshold(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return value


def decide_action(buy: float, sell: float, buy_threshold: float, sell_threshold: float) -> str:
    """BUY if buy beats sell and its threshold, SELL symmetrically, else HOLD."""
    if buy > sell and buy > buy_threshold:
        return Action.BUY
    if sell > buy and sell > sell_threshold:
        return Action.SELL
    return Action.HOLD


@dataclass(frozen=True)
class MLSignal:
    market: str
    buy_probability: float
    sell_probability: float
    hold_probability: float
    confidence: float  # highest probability minus the second highest
    emergency_score: float  # sell_probability * confidence
    action: str  # BUY | SELL | HOLD
    timestamp: datetime | None = None  # open time of the candle the signal was computed on
    model_id: str | None = None
    error: str | None = None  # set when no prediction could be made; action is then HOLD
    # the forward return over the label's horizon that the calibrated probabilities promise, before costs
    # (sum_c p_c * E[r | c]); None when the model has no calibration (models/calibration.py)
    expected_return: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def from_probabilities(
        cls,
        market: str,
        probabilities,
        *,
        buy_threshold: float = DEFAULT_BUY_THRESHOLD,
        sell_threshold: float = DEFAULT_SELL_THRESHOLD,
        timestamp: datetime | None = None,
        model_id: str | None = None,
        expected_return: float | None = None,
    ) -> "MLSignal":
        """Probabilities in CLASSES order (sell, hold, buy); they must sum to 1."""
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if p.shape != (3,) or not np.isfinite(p).all() or (p < -1e-9).any() or abs(p.sum() - 1.0) > 1e-6:
            raise ValueError(f"probabilities must be 3 non-negative numbers summing to 1, got {p.tolist()}")
        sell, hold, buy = (float(x) for x in p)
        top, second = sorted((sell, hold, buy), reverse=True)[:2]
        confidence = top - second
        return cls(
            market=market,
            buy_probability=buy,
            sell_probability=sell,
            hold_probability=hold,
            confidence=confidence,
            emergency_score=sell * confidence,
            action=decide_action(
                buy, sell, _check_threshold("buy_threshold", buy_threshold), _check_threshold("sell_threshold", sell_threshold)
            ),
            timestamp=timestamp,
            model_id=model_id,
            expected_return=None if expected_return is None else float(expected_return),
        )

    @classmethod
    def from_probability_rows(cls, market: str, probabilities: np.ndarray, timestamps, *,
                              buy_threshold: float = DEFAULT_BUY_THRESHOLD, sell_threshold: float = DEFAULT_SELL_THRESHOLD,
                              model_id: str | None = None, expected_returns=None) -> list["MLSignal"]:
        """`from_probabilities` for many rows at once (a backtest's whole history): the same numbers."""
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3 or not np.isfinite(p).all() or (p < -1e-9).any() \
                or (np.abs(p.sum(axis=1) - 1.0) > 1e-6).any():
            raise ValueError("probabilities must be rows of 3 non-negative numbers summing to 1")
        if len(p) != len(timestamps):
            raise ValueError(f"{len(p)} probability rows for {len(timestamps)} timestamps")
        buy_threshold = _check_threshold("buy_threshold", buy_threshold)
        sell_threshold = _check_threshold("sell_threshold", sell_threshold)
        ordered = np.sort(p, axis=1)
        confidence = ordered[:, 2] - ordered[:, 1]
        sell, hold, buy = p[:, SELL], p[:, HOLD], p[:, BUY]
        action = np.where((buy > sell) & (buy > buy_threshold), "BUY",
                          np.where((sell > buy) & (sell > sell_threshold), "SELL", "HOLD"))
        er = [None] * len(p) if expected_returns is None else np.asarray(expected_returns, dtype=np.float64).tolist()
        rows = zip(buy.tolist(), sell.tolist(), hold.tolist(), confidence.tolist(), (sell * confidence).tolist(),
                   action.tolist(), timestamps, er)
        return [cls(market, b, s, h, c, e, a, t, model_id, None, r) for b, s, h, c, e, a, t, r in rows]

    @classmethod
    def failed(cls, market: str, reason: str, timestamp: datetime | None = None) -> "MLSignal":
        """No prediction: HOLD with no conviction (confidence and emergency score 0)."""
        third = 1.0 / 3.0
        return cls(market, third, third, third, 0.0, 0.0, "HOLD", timestamp, None, reason)

    def action_at(self, buy_threshold: float, sell_threshold: float) -> str:
        """The action these thresholds give (HOLD for a failed signal)."""
        if not self.ok:
            return self.action
        return decide_action(self.buy_probability, self.sell_probability, buy_threshold, sell_threshold)

    def with_thresholds(self, buy_threshold: float, sell_threshold: float) -> "MLSignal":
        if not self.ok:
            return self
        return replace(
            self,
            action=decide_action(
                self.buy_probability,
                self.sell_probability,
                _check_threshold("buy_threshold", buy_threshold),
                _check_threshold("sell_threshold", sell_threshold),
            ),
        )

    def is_emergency(self, emergency_threshold: float = DEFAULT_EMERGENCY_THRESHOLD) -> bool:
        return self.ok and self.emergency_score > emergency_threshold
