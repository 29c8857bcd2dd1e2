"""How do replies read? Plain text for each result of the command service (console and Telegram)."""
from __future__ import annotations

from dataclasses import fields

from bot import views_history  # noqa: F401 - registers the views of the trade-history replies
from bot.format import krw, when
from bot.format import volume as _volume
from bot.render import render
from core.service.replies import (
    AlertsView,
    BalanceView,
    Confirm,
    HealthView,
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
    VersionView,
)
from core.service.reports import ChartData, DailyView, EquityData, ModelView
from core.trading.health import ServiceHealth
from core.trading.parameters import with_unit
from core.trading.types import RiskSettings


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
             f"Markets: {', '.join(result.markets)}"]
    lines += [service_line(s) for s in result.services]
    lines += [f"Equity {krw(result.equity_krw)}, cash {krw(result.cash_krw)}",
              f"Open positions: {len(result.positions)}"]
    lines += ["  " + _position_line(p) for p in result.positions]
    return "\n".join(lines)


def service_line(health: ServiceHealth) -> str:
    if health.up is None:
        return f"{health.name}: not contacted yet"
    if health.up:
        return f"{health.name}: OK, last contact {when(health.last_success_at)}"
    last = f"; last success {when(health.last_success_at)}" if health.last_success_at else ""
    return f"{health.name}: UNREACHABLE since {when(health.down_since)} ({health.error}){last}"


@render.register
def _(result: HealthView) -> str:
    uptime = result.now - result.started_at
    hours, rest = divmod(int(uptime.total_seconds()), 3600)
    cycle = "no cycle yet" if result.last_cycle_at is None else (
        f"last cycle {when(result.last_cycle_at)}" + (f" ({result.last_cycle_seconds * 1000:.0f} ms)"
                                                      if result.last_cycle_seconds is not None else ""))
    return "\n".join([f"autotrader {result.version}, {result.mode} mode, up {hours} h {rest // 60} min", cycle,
                      *[service_line(s) for s in result.services]])


@render.register
def _(result: VersionView) -> str:
    return f"autotrader {result.version} ({result.mode} mode, Python {result.python})"


@render.register
def _(result: AlertsView) -> str:
    return "Your alerts:\n" + "\n".join(f"{kind}: {preference}" for kind, preference in result.preferences)


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
        er = f", expected return {r.expected_return:+.2%}" if r.expected_return is not None else ""
        lines.append(f"{r.market} @ {when(r.candle_at)}: {r.action} (buy {r.buy:.2f} / hold {r.hold:.2f} / "
                     f"sell {r.sell:.2f}){er}, confidence {r.confidence:.2f}, emergency {r.emergency_score:.2f}"
                     + (f"; {r.reason}" if r.reason else ""))
    lines += [f"{m}: no signal now: {why}" for m, why in result.waiting]
    if not lines:
        return "No signals yet."
    return "\n".join([_rule_line(result.rule, result.entry_bar), *lines])


def _rule_line(rule: str, bar: float | None, cost: float | None = None) -> str:
    if rule == "expected_return" and bar is not None:
        costs = f" (a round trip's {cost:.2%} plus entry_margin)" if cost is not None else ""
        return f"Rule: expected_return: buy above an expected return of {bar:+.2%}{costs}, sell below 0."
    if rule == "expected_return":
        return "Rule: expected_return"
    return "Rule: threshold: buy or sell when that probability passes its threshold."


@render.register
def _(result: SettingsView) -> str:
    risk: RiskSettings = result.risk
    chosen = dict(result.model_defaults)
    lines = [_rule_line(risk.decision_rule, result.entry_bar, result.round_trip_cost)]
    for f in fields(risk):
        value = getattr(risk, f.name)
        line = f"{f.name} = {with_unit(f.name, value)}"
        if f.name in chosen:
            same = str(chosen[f.name]) == str(value) or _close(chosen[f.name], value)
            line += " (the model's walk-forward default)" if same else \
                f" (the model's walk-forward chose {with_unit(f.name, chosen[f.name])})"
        lines.append(line)
    return "\n".join(lines)


def _close(a, b) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-12
    except (TypeError, ValueError):
        return False


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


PERIOD_LABEL = {"day": "{:%Y-%m-%d}", "week": "week of {:%Y-%m-%d}", "month": "{:%Y-%m}"}


@render.register
def _(result: DailyView) -> str:
    if not result.rows:
        return "No cycle has run yet."
    label = PERIOD_LABEL[result.period]
    return "\n".join(f"{label.format(r.day)}: equity {krw(r.equity_krw)} ({r.change_krw:+,.0f} KRW, {r.change_ratio:+.2%}), "
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
    wf = result.walkforward
    if wf is not None:
        lines.append(f"Walk-forward, out of sample {wf.first} .. {wf.last} ({wf.folds} folds): strategy "
                     f"{_figures(wf.strategy)}; buy-and-hold {_figures(wf.buy_and_hold)}; trend rule {_figures(wf.trend)}.")
    return "\n".join(lines)


def _figures(f: dict) -> str:
    sharpe = f"{f['sharpe']:.2f}" if f.get("sharpe") is not None else "-"
    text = f"{f['total_return']:+.1%}, Sharpe {sharpe}, max drawdown {f['max_drawdown']:.1%}"
    if f.get("trades") and f.get("profit_factor") is not None:
        text += f", {f['trades']} trades, profit factor {f['profit_factor']:.2f}"
    return text


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

