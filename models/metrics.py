"""How good are a set of probabilities? Classification and trading-signal metrics on labelled rows."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)

from models.labels import UPBIT_FEE_RATE
from models.signal import BUY, CLASSES, SELL, decide_action


def _auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    if y_true.min() == y_true.max():
        return None  # undefined with one class present
    return float(roc_auc_score(y_true, score))


def signal_outcomes(proba: np.ndarray, returns: np.ndarray, buy_threshold: float, sell_threshold: float,
                    fee_rate: float = UPBIT_FEE_RATE) -> dict:
    """What acting on the signals above the thresholds would have earned over the label horizon.

    BUY: bought now, sold after the horizon, both fees paid. SELL: sold now instead of holding,
    bought back after the horizon, both fees paid (positive when the fall outweighed the fees).
    """
    keep = (1.0 - fee_rate) ** 2
    actions = np.array([decide_action(p[BUY], p[SELL], buy_threshold, sell_threshold) for p in proba])
    out = {}
    for name, net in (("BUY", (1.0 + returns) * keep - 1.0), ("SELL", keep / (1.0 + returns) - 1.0)):
        chosen = actions == name
        count = int(chosen.sum())
        out[name.lower()] = {
            "count": count,
            "hit_rate": float((net[chosen] > 0).mean()) if count else None,
            "mean_net_return": float(net[chosen].mean()) if count else None,
            "mean_forward_return": float(returns[chosen].mean()) if count else None,
        }
    out["thresholds"] = {"buy": buy_threshold, "sell": sell_threshold}
    return out


def classification_metrics(y: np.ndarray, proba: np.ndarray, returns: np.ndarray,
                           buy_threshold: float = 0.55, sell_threshold: float = 0.55) -> dict:
    y = np.asarray(y, dtype=np.int64)
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    predicted = proba.argmax(axis=1)
    onehot = np.eye(3)[y]
    return {
        "rows": int(len(y)),
        "class_share": {c: float((y == i).mean()) for i, c in enumerate(CLASSES)},
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, average="macro", labels=[0, 1, 2], zero_division=0)),
        "roc_auc_buy": _auc((y == BUY).astype(int), proba[:, BUY]),
        "roc_auc_sell": _auc((y == SELL).astype(int), proba[:, SELL]),
        "log_loss": float(log_loss(y, proba, labels=[0, 1, 2])),
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
        "confusion_matrix": {
            "labels": list(CLASSES),
            "rows_true_cols_predicted": confusion_matrix(y, predicted, labels=[0, 1, 2]).tolist(),
        },
        "signals": signal_outcomes(proba, returns, buy_threshold, sell_threshold),
    }
