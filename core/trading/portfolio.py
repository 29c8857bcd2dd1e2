"""What do we hold and how has it gone? Positions and trade statistics, updated by fills."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from core.trading.types import Account, ClosedTrade, Fill, Position


@dataclass
class Portfolio:
    principal_krw: float
    cash_krw: float
    positions: dict[str, Position] = field(default_factory=dict)
    entry_cost_krw: dict[str, float] = field(default_factory=dict)
    trades: list[ClosedTrade] = field(default_factory=list)
    last_sell_at: dict[str, datetime] = field(default_factory=dict)
    day: str | None = None
    day_start_equity_krw: float = 0.0
    fees_krw: float = 0.0
    bought_krw: dict[str, float] = field(default_factory=dict)  # UTC day -> KRW spent on buys (daily limit)
    return_sum: float = 0.0  # of every closed trade's return, and the losing streak: kept as trades close
    losing_streak: int = 0

    def bought_on(self, at: datetime) -> float:
        return self.bought_krw.get(at.strftime("%Y-%m-%d"), 0.0)

    def snapshot(self) -> dict:
        return {f.name: (getattr(self, f.name).copy() if isinstance(getattr(self, f.name), (dict, list))
                         else getattr(self, f.name)) for f in fields(self)}

    def restore(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value.copy() if isinstance(value, (dict, list)) else value)

    def mark(self, prices: dict[str, float]) -> None:
        """Move trailing-stop peaks up to the latest prices."""
        for market, position in list(self.positions.items()):
            price = prices.get(market)
            if price is not None and price > position.peak_price_krw:
                self.positions[market] = replace(position, peak_price_krw=price)

    def roll_day(self, prices: dict[str, float], now: datetime) -> bool:
        """Start a new trading day (UTC) from the equity now; True if one started. Call it only on
        reconciled books: the day's start is what the daily-loss guard measures against."""
        today = now.strftime("%Y-%m-%d")
        if today == self.day:
            return False
        self.day = today
        self.day_start_equity_krw = self.equity(prices)
        return True

    def renew(self, market: str, at: datetime) -> None:
        """A new entry signal for a held market: its holding period counts from `at`."""
        position = self.positions.get(market)
        if position is not None:
            self.positions[market] = replace(position, renewed_at=at)

    def add_cash_flow(self, amount_krw: float) -> None:
        """Money in (positive) or out other than by a fill: funding, a deposit, a withdrawal. It is
        capital, not profit, so it moves the principal and the day's starting equity as well."""
        self.cash_krw += amount_krw
        self.principal_krw += amount_krw
        if self.day is not None:
            self.day_start_equity_krw += amount_krw

    def equity(self, prices: dict[str, float]) -> float:
        return self.cash_krw + sum(p.value_krw(prices.get(m, p.avg_price_krw)) for m, p in self.positions.items())

    def account(self, prices: dict[str, float]) -> Account:
        average = self.return_sum / len(self.trades) if self.trades else 0.0
        equity = self.equity(prices)
        return Account(self.cash_krw, self.principal_krw, dict(self.positions), equity,
                       self.day_start_equity_krw or equity, self.losing_streak, average, dict(self.last_sell_at))

    def apply(self, fill: Fill, kind: str = "signal") -> ClosedTrade | None:
        self.fees_krw += fill.fee_krw
        if fill.side == "bid":
            self.cash_krw -= fill.funds_krw + fill.fee_krw
            old = self.positions.get(fill.market)
            volume = fill.volume + (old.volume if old else 0.0)
            cost = fill.funds_krw + (old.cost_krw if old else 0.0)
            self.positions[fill.market] = Position(fill.market, volume, cost / volume, old.opened_at if old else fill.at,
                                                   max(fill.price_krw, old.peak_price_krw if old else 0), fill.at)
            self.entry_cost_krw[fill.market] = self.entry_cost_krw.get(fill.market, 0.0) + fill.funds_krw + fill.fee_krw
            if kind != "external":
                day = fill.at.strftime("%Y-%m-%d")
                self.bought_krw[day] = self.bought_krw.get(day, 0.0) + fill.funds_krw
            return None
        self.cash_krw += fill.funds_krw - fill.fee_krw
        position = self.positions[fill.market]
        share = min(1.0, fill.volume / position.volume)
        cost = self.entry_cost_krw.get(fill.market, position.cost_krw) * share
        trade = ClosedTrade(market=fill.market, opened_at=position.opened_at, closed_at=fill.at, cost_krw=cost,
                            proceeds_krw=fill.funds_krw - fill.fee_krw, kind=kind,
                            entry_price_krw=position.avg_price_krw, exit_price_krw=fill.price_krw)
        if share >= 1.0 - 1e-9:
            self.positions.pop(fill.market)
            self.entry_cost_krw.pop(fill.market, None)
        else:
            self.positions[fill.market] = replace(position, volume=position.volume - fill.volume)
            self.entry_cost_krw[fill.market] -= cost
        self.trades.append(trade)
        self.return_sum += trade.return_ratio
        self.losing_streak = self.losing_streak + 1 if trade.return_ratio < 0 else 0
        self.last_sell_at[fill.market] = fill.at
        return trade
