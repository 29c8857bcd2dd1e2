import numpy as np
import pandas as pd
import pytest

from models.labels import LabelSpec, forward_returns, label_returns
from models.signal import MLSignal


def test_confidence_and_emergency_score_arithmetic():
    s = MLSignal.from_probabilities("KRW-BTC", [0.8, 0.15, 0.05])  # sell, hold, buy
    assert s.sell_probability == 0.8 and s.hold_probability == 0.15 and s.buy_probability == 0.05
    assert s.confidence == pytest.approx(0.65)
    assert s.emergency_score == pytest.approx(0.8 * 0.65)
    assert s.action == "SELL"
    assert not s.is_emergency(0.7) and s.is_emergency(0.5)
    extreme = MLSignal.from_probabilities("KRW-BTC", [0.95, 0.04, 0.01])
    assert extreme.emergency_score == pytest.approx(0.95 * 0.91) and extreme.is_emergency()


@pytest.mark.parametrize(
    "probs, buy_t, sell_t, action",
    [
        ([0.2, 0.2, 0.6], 0.55, 0.55, "BUY"),
        ([0.2, 0.25, 0.55], 0.55, 0.55, "HOLD"),  # must exceed the threshold
        ([0.2, 0.25, 0.55], 0.50, 0.55, "BUY"),
        ([0.6, 0.2, 0.2], 0.55, 0.55, "SELL"),
        ([0.6, 0.2, 0.2], 0.55, 0.65, "HOLD"),
        ([0.45, 0.1, 0.45], 0.40, 0.40, "HOLD"),  # buy must beat sell
        ([0.1, 0.8, 0.1], 0.55, 0.55, "HOLD"),
    ],
)
def test_action_from_thresholds(probs, buy_t, sell_t, action):
    s = MLSignal.from_probabilities("KRW-ETH", probs, buy_threshold=buy_t, sell_threshold=sell_t)
    assert s.action == action
    assert s.with_thresholds(0.0, 1.0).action == ("BUY" if probs[2] > probs[0] else "HOLD")


def test_probabilities_are_validated():
    with pytest.raises(ValueError, match="summing to 1"):
        MLSignal.from_probabilities("KRW-BTC", [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="buy_threshold must be between 0 and 1"):
        MLSignal.from_probabilities("KRW-BTC", [0.2, 0.2, 0.6], buy_threshold=1.5)


def test_failed_signal_is_hold_without_conviction():
    s = MLSignal.failed("KRW-BTC", "model missing")
    assert s.action == "HOLD" and not s.ok and s.error == "model missing"
    assert s.confidence == 0 and s.emergency_score == 0 and not s.is_emergency(0.0)
    assert s.buy_probability + s.sell_probability + s.hold_probability == pytest.approx(1)


def test_labels_are_net_of_the_round_trip_fee():
    spec = LabelSpec(horizon=2, threshold=0.005, fee_rate=0.0005)
    # +0.6% gross is only +0.5%-ish net: (1.006 * 0.9995^2 - 1) = 0.004994 -> HOLD
    returns = np.array([0.006, 0.0061, -0.004, -0.0041, -0.0040, 0.0, np.nan])
    labels = label_returns(returns, spec)
    # SELL when 0.9995^2/(1+r)-1 > 0.005: r=-0.004 gives 0.0030, still HOLD
    assert labels.tolist() == [1, 2, 1, 1, 1, 1, -1]
    assert label_returns(np.array([-0.0055, -0.0070]), spec).tolist() == [1, 0]
    assert label_returns(np.array([0.03, -0.03]), spec).tolist() == [2, 0]


def test_forward_returns_match_by_timestamp_not_row():
    index = pd.to_datetime(["2025-01-01T00:00Z", "2025-01-01T01:00Z", "2025-01-01T02:00Z", "2025-01-01T05:00Z"]).as_unit("us")
    candles = pd.DataFrame({"close": [100.0, 110.0, 121.0, 50.0]}, index=index)
    r = forward_returns(candles, 2, 3600)
    assert r[0] == pytest.approx(0.21)
    assert np.isnan(r[1]) and np.isnan(r[2]) and np.isnan(r[3])  # 03:00 and beyond missing


def test_label_spec_validation():
    with pytest.raises(ValueError, match="horizon"):
        LabelSpec(horizon=0)


def test_signals_built_in_bulk_equal_those_built_one_by_one():
    rng = np.random.default_rng(3)
    rows = rng.dirichlet([1, 1, 1], size=500)
    bulk = MLSignal.from_probability_rows("KRW-BTC", rows, list(range(500)), buy_threshold=0.4, sell_threshold=0.45,
                                          model_id="m")
    single = [MLSignal.from_probabilities("KRW-BTC", r, buy_threshold=0.4, sell_threshold=0.45, timestamp=i, model_id="m")
              for i, r in enumerate(rows)]
    assert bulk == single and {s.action for s in bulk} == {"BUY", "SELL", "HOLD"}
    assert [s.action_at(0.4, 0.45) for s in single] == [s.action for s in single]
    with pytest.raises(ValueError):
        MLSignal.from_probability_rows("KRW-BTC", rows * 2, list(range(500)))
