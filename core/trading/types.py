"""The plain types the trading cycle passes around: positions, account, risk settings, decisions,
fills, orders and step results. Kinds and states are enums (their values are what is stored); the
types that cross a seam are built with keywords."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum

from core.i18n import _, ngettext
from core.trading.parameters import refusal_for
from models.signal import Action, MLSignal


class DecisionKind(StrEnum):
    """Why an order is sent: the rule that decided it (also the `kind` of its stored order)."""

    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    EMERGENCY = "emergency"
    TIME_EXIT = "time_exit"  # held its horizon without a new entry signal
    MANUAL = "manual"
    EXTERNAL = "external"  # a difference adopted from the exchange's balances


class Side(StrEnum):
    BID = "bid"  # buy
    ASK = "ask"  # sell


class OrderState(StrEnum):
    PENDING = "pending"  # stored, sent, no answer yet
    DONE = "done"
    CANCEL = "cancel"  # cancelled with nothing executed
    FAILED = "failed"  # refused, or never reached the exchange
    UNKNOWN = "unknown"  # sent, outcome unknown: reconciliation settles it


OPEN_ORDER_STATES = (OrderState.PENDING, OrderState.UNKNOWN)


@dataclass(frozen=True)
class Position:
    market: str
    volume: float
    avg_price_krw: float
    opened_at: datetime
    peak_price_krw: float  # highest close since entry (trailing stop)
    renewed_at: datetime | None = None  # the last entry signal while held (the holding period counts from it)

    @property
    def cost_krw(self) -> float:
        return self.volume * self.avg_price_krw

    def value_krw(self, price_krw: float) -> float:
        return self.volume * price_krw

    def return_ratio(self, price_krw: float) -> float:
        return price_krw / self.avg_price_krw - 1.0


@dataclass(frozen=True, kw_only=True)
class ClosedTrade:
    market: str
    opened_at: datetime
    closed_at: datetime
    cost_krw: float  # paid including the buy fee
    proceeds_krw: float  # received after the sell fee
    kind: DecisionKind
    entry_price_krw: float = 0.0  # the position's average buy price (0: not known)
    exit_price_krw: float = 0.0  # the sale's fill price

    @property
    def return_ratio(self) -> float:
        return self.proceeds_krw / self.cost_krw - 1.0


@dataclass(frozen=True)
class Account:
    cash_krw: float
    principal_krw: float
    positions: dict[str, Position]
    equity_krw: float  # cash + positions at the latest prices
    day_start_equity_krw: float
    consecutive_losses: int = 0
    average_return: float = 0.0  # mean return of closed trades so far
    last_sell_at: dict[str, datetime] = field(default_factory=dict)

    @property
    def open_positions(self) -> int:
        return len(self.positions)

    @property
    def day_return(self) -> float:
        return self.equity_krw / self.day_start_equity_krw - 1.0 if self.day_start_equity_krw else 0.0


@dataclass(frozen=True)
class RiskSettings:
    """Every threshold and risk parameter users can change by command; they persist."""

    buy_threshold: float = 0.55
    sell_threshold: float = 0.55
    emergency_threshold: float = 0.7
    max_positions: int = 3
    max_position_ratio: float = 0.3  # of equity, per position
    stop_loss: float = 0.03
    take_profit: float = 0.06
    trailing_stop: float = 0.03
    cooldown_hours: float = 6.0
    max_consecutive_losses: int = 3
    loss_pause_hours: float = 24.0  # after that many losses in a row, no buying for this long after the last
    daily_loss_limit: float = 0.05
    # price-shock guard: a fall of this much within 1, 3 or 5 minutes sells through the emergency path (0 = off)
    shock_drop_1m: float = 0.025
    shock_drop_3m: float = 0.04
    shock_drop_5m: float = 0.06
    # the decision layer: expected_return (buy when the calibrated expected return beats a round trip's
    # cost plus entry_margin, sell when it turns negative or after max_hold_hours without a new entry
    # signal) or threshold (the user guide's buy/sell probability thresholds)
    decision_rule: str = "expected_return"
    entry_margin: float = 0.0075
    max_hold_hours: float = 12.0
    sizing: str = "fixed"  # fixed: max_position_ratio | kelly: kelly_fraction of Kelly, capped by max_position_ratio
    kelly_fraction: float = 0.25
    paused: bool = False

    RATIOS = ("buy_threshold", "sell_threshold", "emergency_threshold", "max_position_ratio", "stop_loss",
              "take_profit", "trailing_stop", "daily_loss_limit", "shock_drop_1m", "shock_drop_3m", "shock_drop_5m",
              "entry_margin", "kelly_fraction")
    CHOICES = {"decision_rule": ("expected_return", "threshold"), "sizing": ("fixed", "kelly")}

    @property
    def shock_windows(self) -> tuple[tuple[int, float], ...]:
        """(seconds, fall) pairs of the guard that are switched on."""
        pairs = ((60, self.shock_drop_1m), (180, self.shock_drop_3m), (300, self.shock_drop_5m))
        return tuple((seconds, drop) for seconds, drop in pairs if drop > 0)

    def with_value(self, name: str, text: str) -> "RiskSettings":
        """A copy with one parameter set from user text; ValueError says the valid form."""
        known = {f.name: f for f in fields(self)}
        if name not in known or name == "paused":
            raise ValueError(_("unknown parameter {text!r}; one of: {names}").format(
                text=name, names=", ".join(n for n in known if n != "paused")))
        if name in self.CHOICES:
            if str(text).lower() not in self.CHOICES[name]:
                raise ValueError(_("{name} must be {choices}, got {text!r}").format(
                    name=name, choices=" | ".join(self.CHOICES[name]), text=text))
            return replace(self, **{name: str(text).lower()})
        kind = type(getattr(self, name))
        try:
            value = kind(float(text)) if kind is int else kind(text)
        except ValueError:
            raise ValueError(_("{name} needs a number, got {text!r}").format(name=name, text=text)) from None
        if name in self.RATIOS and not 0 <= value <= 1:
            raise ValueError(_("{name} must be between 0 and 1, got {value}").format(name=name, value=value))
        if value < 0:
            raise ValueError(_("{name} must not be negative, got {value}").format(name=name, value=value))
        if kind is int and float(text) != int(float(text)):
            raise ValueError(_("{name} needs a whole number, got {text!r}").format(name=name, text=text))
        refusal = refusal_for(name, value)
        if refusal is not None:
            raise ValueError(refusal)
        return replace(self, **{name: value})


@dataclass(frozen=True, kw_only=True)
class Decision:
    market: str
    approved: bool
    action: Action
    investment_ratio: float  # BUY: share of equity to spend; SELL: share of the position to sell
    reason: str  # a core.trading.reasons.Reason: English text with its code and parameters
    kind: DecisionKind = DecisionKind.SIGNAL
    renew: bool = False  # a held market got a new entry signal: its holding period starts again


@dataclass(frozen=True)
class OrderLimits:
    """Hard caps on buying, set by the operator in the environment (not by chat commands); 0 = none.

    Live mode refuses to start without both. Sales are never capped: an exit must always go through."""

    max_order_krw: float = 0.0
    max_daily_krw: float = 0.0  # KRW spent on buys per UTC day

    def allowed(self, amount_krw: float, spent_today_krw: float) -> tuple[float, str | None]:
        """The buy amount these limits allow, and why it was cut (None: not cut)."""
        why = None
        if self.max_order_krw and amount_krw > self.max_order_krw:
            amount_krw, why = self.max_order_krw, f"capped at the {self.max_order_krw:,.0f} KRW per-order limit"
        if self.max_daily_krw:
            left = max(0.0, self.max_daily_krw - spent_today_krw)
            if amount_krw > left:
                amount_krw = left
                why = f"daily buy limit of {self.max_daily_krw:,.0f} KRW: {left:,.0f} KRW left today"
        return amount_krw, why


@dataclass(frozen=True, kw_only=True)
class Fill:
    market: str
    side: Side
    identifier: str
    price_krw: float
    volume: float
    fee_krw: float
    funds_krw: float  # KRW paid (bid, before fee) or received (ask, before fee)
    at: datetime


@dataclass(frozen=True, kw_only=True)
class MarketInput:
    signal: MLSignal
    price_krw: float  # the latest closed candle's close
    open_krw: float | None = None  # its open and low: the price-shock guard judges candles by them
    low_krw: float | None = None
    volatility: float | None = None  # std of hourly log returns over the last 20 candles (Kelly sizing)


@dataclass(frozen=True)
class WarmingUp:
    """A market whose history is still too short for its first window: information, not an error."""

    candles_needed: int | None  # None: not known (the features are not defined yet)

    def __str__(self) -> str:
        if self.candles_needed is None:
            return _("warming up: more history is needed before its first signal")
        n = self.candles_needed
        return ngettext("warming up: {n} more candle of history needed before its first signal",
                        "warming up: {n} more candles of history needed before its first signal", n).format(n=n)


@dataclass(frozen=True)
class SourceDown:
    """The market data source did not answer for this market: said once per outage, not per market."""

    error: str

    def __str__(self) -> str:
        return f"no market data: {self.error}"


@dataclass(frozen=True, kw_only=True)
class StepResult:
    market: str
    at: datetime
    signal: MLSignal | None = None
    decision: Decision | None = None
    fill: Fill | None = None
    error: str | None = None
    order_id: str | None = None  # the identifier of the order placed, if one was
    trade: ClosedTrade | None = None  # the round trip a sale closed
    order_state: OrderState | None = None  # an order without a fill: failed, or unknown (reconciliation settles it)
    warming_up: WarmingUp | None = None  # no signal yet because the market's history is too short
    source_down: bool = False  # no signal because the market data source did not answer (one alert per outage)


@dataclass(frozen=True, kw_only=True)
class OrderRequest:
    """An order as it is about to be sent; stored (state pending) before it is."""

    identifier: str
    market: str
    side: Side
    ord_type: str  # price (buy for a KRW amount) | market (sell a volume)
    amount_krw: float | None
    volume: float | None
    kind: DecisionKind
    candle_at: datetime | None  # the candle whose decision this carries out
