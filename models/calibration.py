"""How far can the model's probabilities be trusted, and what return do they promise?

A Calibration is fitted on validation rows only (never on the rows the model learnt from): per class,
one-vs-rest, Platt scaling (a logistic curve on the logit of the raw probability) or isotonic
regression, then the three calibrated probabilities are renormalised to sum to 1. Both maps are
monotone, so the ranking within a class is kept.

It also carries the mean forward return of each class, measured on the training rows: the expected
forward return of a window is sum_c p_c * E[return | class c]. The decision layer compares it with
the cost of a round trip (core.trading.engine).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

METHODS = ("platt", "isotonic")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    method: str  # platt | isotonic
    params: tuple  # per class: (a, b) for Platt, (xs, ys) for isotonic
    class_returns: tuple[float, float, float]  # mean forward return of SELL, HOLD, BUY rows (training split)
    fitted_on: dict = field(default_factory=dict)  # where it was fitted: rows and time range

    def class_map(self, c: int, p: np.ndarray) -> np.ndarray:
        """Class c's calibrated probability (before the three are renormalised): monotone in `p`."""
        if self.method == "platt":
            a, b = self.params[c]
            return 1.0 / (1.0 + np.exp(-(a * _logit(p) + b)))
        xs, ys = self.params[c]
        return np.interp(p, xs, ys)

    def apply(self, proba: np.ndarray) -> np.ndarray:
        p = np.asarray(proba, dtype=np.float64).reshape(-1, 3)
        out = np.clip(np.column_stack([self.class_map(c, p[:, c]) for c in range(3)]), _EPS, None)
        return out / out.sum(axis=1, keepdims=True)

    def expected_return(self, calibrated: np.ndarray) -> np.ndarray:
        """sum_c p_c * E[r | c] per row: the forward return the probabilities promise, before costs."""
        return np.asarray(calibrated, dtype=np.float64).reshape(-1, 3) @ np.asarray(self.class_returns)

    def to_dict(self) -> dict:
        params = [list(map(float, p)) if self.method == "platt" else [list(map(float, p[0])), list(map(float, p[1]))]
                  for p in self.params]
        return {"method": self.method, "params": params, "class_returns": list(self.class_returns),
                "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        method = data["method"]
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}")
        params = tuple(tuple(p) if method == "platt" else (tuple(p[0]), tuple(p[1])) for p in data["params"])
        if len(params) != 3 or len(data["class_returns"]) != 3:
            raise ValueError("a calibration needs three classes")
        return cls(method, params, tuple(float(r) for r in data["class_returns"]), dict(data.get("fitted_on", {})))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        return cls.from_dict(json.loads(Path(path).read_text()))


def class_mean_returns(returns: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Mean forward return of the rows of each class (training rows); 0 for a class with no row."""
    out = []
    for c in range(3):
        chosen = returns[(labels == c) & np.isfinite(returns)]
        out.append(float(chosen.mean()) if len(chosen) else 0.0)
    return tuple(out)


def fit_calibration(proba: np.ndarray, labels: np.ndarray, class_returns: tuple[float, float, float],
                    method: str = "platt", fitted_on: dict | None = None) -> Calibration:
    """Per-class one-vs-rest calibration of `proba` (validation rows) against their `labels`."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
    p = np.asarray(proba, dtype=np.float64).reshape(-1, 3)
    y = np.asarray(labels)
    if len(p) != len(y) or len(p) < 50:
        raise ValueError(f"calibration needs at least 50 validation rows with a label, got {len(p)}")
    params = []
    for c in range(3):
        target = (y == c).astype(int)
        if target.min() == target.max():  # one class only: keep the raw probability
            params.append((1.0, 0.0) if method == "platt" else ((0.0, 1.0), (0.0, 1.0)))
            continue
        if method == "platt":
            fit = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p[:, c]).reshape(-1, 1), target)
            a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
            if a < 0:  # the model ranks this class the wrong way round: trust only the base rate (monotone)
                rate = float(np.clip(target.mean(), _EPS, 1 - _EPS))
                a, b = 0.0, float(np.log(rate / (1 - rate)))
            params.append((a, b))
        else:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p[:, c], target)
            params.append((tuple(iso.X_thresholds_.tolist()), tuple(iso.y_thresholds_.tolist())))
    return Calibration(method, tuple(params), tuple(class_returns), dict(fitted_on or {}))
