"""What do commands answer? Plain data, one frozen dataclass per kind of reply; bot/views.py turns
each into text (or a picture) for the console and for Telegram."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.service.registry import Command
from core.trading.health import ServiceHealth
from core.trading.types import RiskSettings, StepResult


@dataclass(frozen=True)
class Problem:
    text: str


@dataclass(frozen=True)
class Notice:
    text: str


@dataclass(frozen=True)
class Welcome:
    """The answer to /start: a notice, shown in Telegram with the keyboard of common commands."""

    text: str


@dataclass(frozen=True)
class HelpView:
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class PositionView:
    market: str
    volume: float
    avg_price_krw: float
    price_krw: float
    value_krw: float
    pnl_krw: float  # if sold now at the latest price, after the sale fee, against the entry cost with its fee
    pnl_ratio: float
    opened_at: datetime


@dataclass(frozen=True)
class StatusView:
    mode: str
    paused: bool
    now: datetime | None
    last_cycle_seconds: float | None
    next_cycle_at: datetime | None
    markets: tuple[str, ...]
    positions: tuple[PositionView, ...]
    cash_krw: float
    equity_krw: float
    services: tuple[ServiceHealth, ...] = ()


@dataclass(frozen=True)
class PositionsView:
    positions: tuple[PositionView, ...]


@dataclass(frozen=True)
class BalanceView:
    cash_krw: float
    positions_krw: float
    equity_krw: float
    principal_krw: float
    fees_krw: float

    @property
    def total_return(self) -> float:
        return self.equity_krw / self.principal_krw - 1.0


@dataclass(frozen=True)
class ProfitView:
    days: int | None
    trades: int
    wins: int
    realised_krw: float
    best: float | None
    worst: float | None
    equity_start_krw: float
    equity_now_krw: float


@dataclass(frozen=True)
class SignalRow:
    market: str
    candle_at: datetime
    action: str
    buy: float
    hold: float
    sell: float
    confidence: float
    emergency_score: float
    decision: str | None
    reason: str | None
    expected_return: float | None = None  # None from a model without calibration
    reason_data: dict | None = None  # the reason's code and parameters, to say it in the reader's language


@dataclass(frozen=True)
class SignalsView:
    rows: tuple[SignalRow, ...]
    waiting: tuple[tuple[str, str], ...]  # (market, why it has no signal now)
    rule: str = "expected_return"
    entry_bar: float | None = None  # the expected return a buy must beat under the expected_return rule


@dataclass(frozen=True)
class SettingsView:
    risk: RiskSettings
    model_defaults: tuple[tuple[str, object], ...] = ()  # what the model's walk-forward chose, name -> value
    entry_bar: float | None = None
    round_trip_cost: float | None = None


@dataclass(frozen=True)
class Confirm:
    """Ask before doing it: `command` is what runs once the user agrees; `key` names this question
    (it expires, and an answer is taken once)."""

    question: str
    command: str
    key: str | None = None


@dataclass(frozen=True)
class SaleView:
    results: tuple[StepResult, ...]


@dataclass(frozen=True)
class PurchaseView:
    result: StepResult


@dataclass(frozen=True)
class HealthView:
    mode: str
    version: str
    started_at: datetime
    now: datetime
    last_cycle_at: datetime | None
    last_cycle_seconds: float | None
    services: tuple[ServiceHealth, ...]


@dataclass(frozen=True)
class VersionView:
    version: str
    mode: str
    python: str


@dataclass(frozen=True)
class AlertsView:
    """The alert kinds and what a chat receives of each (on | off | silent)."""

    preferences: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LogsView:
    lines: tuple[str, ...]
