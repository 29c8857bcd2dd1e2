"""A signal feed that plays a script: the model's outputs are the input here, the code under test is
everything after them (engine, paper exchange, journal, commands)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.trading.types import MarketInput
from models.signal import MLSignal

START = datetime(2025, 10, 1, tzinfo=timezone.utc)
BUY = (0.1, 0.2, 0.7)  # sell, hold, buy: confidence 0.5
HOLD = (0.3, 0.4, 0.3)
SELL = (0.7, 0.2, 0.1)
EMERGENCY = (0.95, 0.03, 0.02)  # emergency score 0.95 * 0.92 = 0.87


def expected_return(probabilities) -> float:
    """What a calibrated model with these class returns would promise: BUY +2.0%, HOLD +0.06%, SELL -1.8%."""
    sell, _, buy = probabilities
    return 0.033 * buy - 0.031 * sell


def hour(i: int) -> datetime:
    return START + timedelta(hours=i)


class ScriptedFeed:
    def __init__(self):
        self.script: dict[datetime, dict[str, tuple[tuple, float]]] = {}
        self.errors: dict[datetime, dict[str, str]] = {}
        self.managers: list = []  # the models swapped in (core.service.serving), in order

    def at(self, i: int, market: str, probabilities: tuple, price_krw: float) -> "ScriptedFeed":
        self.script.setdefault(hour(i), {})[market] = (probabilities, price_krw)
        return self

    def use_manager(self, manager, now: datetime) -> None:
        self.managers.append(manager)

    def inputs(self, now: datetime):
        out = {}
        for market, (probabilities, price) in self.script.get(now, {}).items():
            signal = MLSignal.from_probabilities(market, probabilities, timestamp=now - timedelta(hours=1),
                                                 model_id="scripted", expected_return=expected_return(probabilities))
            out[market] = MarketInput(signal=signal, price_krw=price)
        return out, dict(self.errors.get(now, {}))
