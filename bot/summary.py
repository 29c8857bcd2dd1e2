"""How does a backtest or a replay end? Its figures beside buy-and-hold, with the labels people read."""
from __future__ import annotations

from dataclasses import fields

from core.display import krw, when
from core.display import volume as _volume
from core.i18n import N_, _
from core.trading.parameters import with_unit
from core.trading.types import RiskSettings

FIGURE_LABELS = {
    "total_return": N_("Total return"), "cagr": N_("Yearly return (CAGR)"), "sharpe": N_("Sharpe ratio (annualised)"),
    "sortino": N_("Sortino ratio (annualised)"), "max_drawdown": N_("Largest drawdown"), "calmar": N_("Calmar ratio"),
    "win_rate": N_("Winning trades"), "profit_factor": N_("Profit factor (gains / losses)"),
    "trades": N_("Trades (round trips)"), "average_holding_hours": N_("Average holding (hours)"),
    "exposure": N_("Time invested"), "fees_krw": N_("Fees paid (KRW)"), "expectancy": N_("Mean trade after fees"),
    "turnover": N_("Turnover (equity traded per year)"), "start_equity_krw": N_("Equity at the start (KRW)"),
    "end_equity_krw": N_("Equity at the end (KRW)"),
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
    lines = [_("| figure | strategy | buy and hold |"), "|---|---|---|"]
    for key in strategy:
        name = _(FIGURE_LABELS[key]) if key in FIGURE_LABELS else key
        lines.append(f"| {name} | {figure(key, strategy[key])} | {figure(key, hold.get(key))} |")
    return "\n".join(lines)


def run_summary(result, started_with: RiskSettings) -> str:
    """A backtest's or a replay's end: its period, figures, the positions left open and how they were
    valued, and the settings it ran with and that were changed during it."""
    first, last = result.equity.index[0].to_pydatetime(), result.equity.index[-1].to_pydatetime()
    lines = [_("{first} .. {last}, {n} candle closes").format(first=when(first), last=when(last), n=len(result.equity)),
             figures_table(result.metrics, result.buy_and_hold_metrics)]
    if result.open_positions:
        lines.append(_("Open at the end (valued at each market's last close, not sold, no sale fee deducted):"))
        lines += ["  " + _("{market}: {volume} bought at {avg}, last close {price}, worth {value}").format(
            market=p.market, volume=_volume(p.volume), avg=krw(p.avg_price_krw), price=krw(p.price_krw),
            value=krw(p.value_krw)) for p in result.open_positions]
    else:
        lines.append(_("No position was open at the end: every trade is closed and counted."))
    defaults = RiskSettings()
    own = [f"{f.name}={with_unit(f.name, getattr(started_with, f.name))}" for f in fields(started_with)
           if getattr(started_with, f.name) != getattr(defaults, f.name)]
    lines.append(_("Settings: the built-in defaults except {changes}").format(changes=", ".join(own)) if own
                 else _("Settings: the built-in defaults"))
    if result.settings_changes:
        lines.append(_("Changed during the run: {changes}").format(changes="; ".join(
            _("{time} by {who}: {what}").format(time=when(at), who=who, what=what)
            for at, who, what in result.settings_changes)))
    return "\n".join(lines)
