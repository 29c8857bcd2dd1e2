"""How does a backtest or a replay end? Its figures beside buy-and-hold, with the labels people read."""
from __future__ import annotations

from dataclasses import fields

from bot.format import krw, when
from bot.format import volume as _volume
from core.trading.parameters import with_unit
from core.trading.types import RiskSettings

FIGURE_LABELS = {
    "total_return": "Total return", "cagr": "Yearly return (CAGR)", "sharpe": "Sharpe ratio (annualised)",
    "sortino": "Sortino ratio (annualised)", "max_drawdown": "Largest drawdown", "calmar": "Calmar ratio",
    "win_rate": "Winning trades", "profit_factor": "Profit factor (gains / losses)", "trades": "Trades (round trips)",
    "average_holding_hours": "Average holding (hours)", "exposure": "Time invested", "fees_krw": "Fees paid (KRW)",
    "expectancy": "Mean trade after fees", "turnover": "Turnover (equity traded per year)",
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
    if key == "turnover":
        return f"{value:.1f}x"
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
    lines.append("Settings: " + ("the built-in defaults except " + ", ".join(own) if own else "the built-in defaults"))
    if result.settings_changes:
        lines.append("Changed during the run: " + "; ".join(f"{when(at)} by {who}: {what}"
                                                          for at, who, what in result.settings_changes))
    return "\n".join(lines)
