"""How do replies read? Plain text for each result of the command service (console and Telegram)."""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from functools import singledispatch

from core.service.commands import (
    BalanceView,
    Confirm,
    HelpView,
    Notice,
    PositionsView,
    PositionView,
    Problem,
    ProfitView,
    SaleView,
    SettingsView,
    SignalsView,
    StatusView,
)
from core.service.reports import ChartData, DailyView, EquityData, ModelView
from core.trading.parameters import with_unit
from core.trading.types import RiskSettings


def krw(value: float) -> str:
    return f"{value:,.0f} KRW"


def when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _volume(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".")


@singledispatch
def render(result) -> str:
    raise TypeError(f"no view for {type(result).__name__}")


@render.register
def _(result: Problem) -> str:
    return f"Error: {result.text}"


@render.register
def _(result: Notice) -> str:
    return result.text


@render.register
def _(result: HelpView) -> str:
    width = max(len(c.usage) for c in result.commands)
    return "Commands:\n" + "\n".join(f"{c.usage.ljust(width)}  {c.summary}" for c in result.commands)


def _position_line(p: PositionView) -> str:
    return (f"{p.market}: {_volume(p.volume)} at avg {krw(p.avg_price_krw)}, now {krw(p.price_krw)}, "
            f"value {krw(p.value_krw)}, P/L {p.pnl_ratio:+.2%} ({p.pnl_krw:+,.0f} KRW), since {when(p.opened_at)}")


@render.register
def _(result: StatusView) -> str:
    cycle = "no cycle yet" if result.now is None else (
        f"last cycle {when(result.now)}" + (f" ({result.last_cycle_seconds * 1000:.0f} ms)"
                                            if result.last_cycle_seconds is not None else ""))
    lines = [f"Mode: {result.mode}; trading {'PAUSED (exits still run)' if result.paused else 'active'}",
             f"{cycle}; next {when(result.next_cycle_at)}",
             f"Markets: {', '.join(result.markets)}",
             f"Equity {krw(result.equity_krw)}, cash {krw(result.cash_krw)}",
             f"Open positions: {len(result.positions)}"]
    lines += ["  " + _position_line(p) for p in result.positions]
    return "\n".join(lines)


@render.register
def _(result: PositionsView) -> str:
    if not result.positions:
        return "No open positions."
    return "\n".join(_position_line(p) for p in result.positions)


@render.register
def _(result: BalanceView) -> str:
    return (f"Cash {krw(result.cash_krw)}\nPositions {krw(result.positions_krw)}\nEquity {krw(result.equity_krw)} "
            f"({result.total_return:+.2%} on {krw(result.principal_krw)})\nFees paid {krw(result.fees_krw)}")


@render.register
def _(result: ProfitView) -> str:
    period = "all time" if result.days is None else f"last {result.days} day{'s' if result.days != 1 else ''}"
    change = result.equity_now_krw / result.equity_start_krw - 1.0 if result.equity_start_krw else 0.0
    lines = [f"Profit, {period}:",
             f"Closed trades {result.trades}, won {result.wins}"
             + (f" ({result.wins / result.trades:.0%})" if result.trades else ""),
             f"Realised {result.realised_krw:+,.0f} KRW after fees",
             f"Equity {krw(result.equity_start_krw)} -> {krw(result.equity_now_krw)} ({change:+.2%})"]
    if result.best is not None:
        lines.append(f"Best trade {result.best:+.2%}, worst {result.worst:+.2%}")
    return "\n".join(lines)


@render.register
def _(result: SignalsView) -> str:
    lines = []
    for r in result.rows:
        lines.append(f"{r.market} @ {when(r.candle_at)}: {r.action} (buy {r.buy:.2f} / hold {r.hold:.2f} / "
                     f"sell {r.sell:.2f}), confidence {r.confidence:.2f}, emergency {r.emergency_score:.2f}"
                     + (f"; {r.reason}" if r.reason else ""))
    lines += [f"{m}: no signal now: {why}" for m, why in result.waiting]
    return "\n".join(lines) or "No signals yet."


@render.register
def _(result: SettingsView) -> str:
    risk: RiskSettings = result.risk
    return "\n".join(f"{f.name} = {with_unit(f.name, getattr(risk, f.name))}" for f in fields(risk))


@render.register
def _(result: SaleView) -> str:
    lines = []
    for r in result.results:
        if r.error is not None:
            lines.append(f"{r.market}: sale FAILED: {r.error}")
        else:
            pnl = f", P/L {r.trade.return_ratio:+.2%}" if r.trade else ""
            lines.append(f"{r.market}: sold {_volume(r.fill.volume)} at {krw(r.fill.price_krw)}, "
                         f"{krw(r.fill.funds_krw - r.fill.fee_krw)} after fee{pnl}")
    return "\n".join(lines)


@render.register
def _(result: DailyView) -> str:
    if not result.rows:
        return "No cycle has run yet."
    return "\n".join(f"{r.day:%Y-%m-%d}: equity {krw(r.equity_krw)} ({r.change_krw:+,.0f} KRW, {r.change_ratio:+.2%}), "
                     f"{r.trades} trade{'s' if r.trades != 1 else ''} closed ({r.realised_krw:+,.0f} KRW)"
                     for r in result.rows)


@render.register
def _(result: ModelView) -> str:
    lines = []
    for r in result.rows:
        if r.error:
            lines.append(f"{r.market}: model metadata unreadable ({r.error})")
            continue
        metrics = (f"validation log-loss {r.validation_log_loss:.4f}, AUC buy {r.validation_auc_buy:.3f}"
                   if r.validation_log_loss is not None and r.validation_auc_buy is not None else "no validation metrics")
        lines.append(f"{r.market}: {r.model_id} ({r.scope}), trained on {r.trained_on}, out-of-sample from "
                     f"{r.test_start}; {metrics}")
    return "\n".join(lines)


@render.register
def _(result: ChartData) -> str:
    return (f"{result.market}: {len(result.candles)} candles, {len(result.signals)} BUY/SELL signals, "
            f"{len(result.fills)} fills")


@render.register
def _(result: EquityData) -> str:
    return f"Equity curve: {len(result.times)} cycles, last {krw(result.equity_krw[-1])}"


@render.register
def _(result: Confirm) -> str:
    return result.question


FIGURE_LABELS = {
    "total_return": "Total return", "cagr": "Yearly return (CAGR)", "sharpe": "Sharpe ratio (annualised)",
    "sortino": "Sortino ratio (annualised)", "max_drawdown": "Largest drawdown", "calmar": "Calmar ratio",
    "win_rate": "Winning trades", "profit_factor": "Profit factor (gains / losses)", "trades": "Trades (round trips)",
    "average_holding_hours": "Average holding (hours)", "exposure": "Time invested", "fees_krw": "Fees paid (KRW)",
    "start_equity_krw": "Equity at the start (KRW)", "end_equity_krw": "Equity at the end (KRW)",
}


def figure(key: str, value) -> str:
    if value is None:
        return "-"
    if key == "trades":
        return str(value)
    if key.endswith("_krw"):
        return f"{value:,.0f}"
    if key in ("sharpe", "sortino", "calmar", "profit_factor", "average_holding_hours"):
        return f"{value:.2f}"
    return f"{value:+.2%}" if key in ("total_return", "cagr") else f"{value:.2%}"


def figures_table(strategy: dict, hold: dict) -> str:
    """A backtest's figures beside buy-and-hold, with the labels people read (JSON keeps the keys)."""
    lines = ["| figure | strategy | buy and hold |", "|---|---|---|"]
    for key in strategy:
        lines.append(f"| {FIGURE_LABELS.get(key, key)} | {figure(key, strategy[key])} | {figure(key, hold.get(key))} |")
    return "\n".join(lines)


def run_summary(result, started_with: RiskSettings) -> str:
    """A backtest's or a replay's end: its period, figures, the positions left open and how they were
    valued, and the settings it ran with and that were changed during it."""
    lines = [f"{result.equity.index[0]:%Y-%m-%d %H:%M} .. {result.equity.index[-1]:%Y-%m-%d %H:%M} UTC, "
             f"{len(result.equity)} candle closes", figures_table(result.metrics, result.buy_and_hold_metrics)]
    if result.open_positions:
        lines.append("Open at the end (valued at each market's last close, not sold, no sale fee deducted):")
        lines += [f"  {p.market}: {_volume(p.volume)} bought at {krw(p.avg_price_krw)}, last close "
                  f"{krw(p.price_krw)}, worth {krw(p.value_krw)}" for p in result.open_positions]
    else:
        lines.append("No position was open at the end: every trade is closed and counted.")
    defaults = RiskSettings()
    own = [f"{f.name}={with_unit(f.name, getattr(started_with, f.name))}" for f in fields(started_with)
           if getattr(started_with, f.name) != getattr(defaults, f.name)]
    lines.append("Settings: " + ("the defaults except " + ", ".join(own) if own else "the defaults"))
    if result.settings_changes:
        lines.append("Changed during the run: " + "; ".join(f"{when(at)} by {who}: {what}"
                                                          for at, who, what in result.settings_changes))
    return "\n".join(lines)
