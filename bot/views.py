"""How do replies read? Plain text for each result of the command service (console and Telegram), in
the current language (core.i18n: the front-end renders inside the chat's `language(...)`)."""
from __future__ import annotations

from dataclasses import fields
from unicodedata import east_asian_width

from bot import views_history  # noqa: F401 - registers the views of the trade-history replies
from bot.model_view import version_lines
from bot.messages import action, balance_lines, day_line, label, mode
from bot.render import render
from core.display import day, krw, percent, signed_krw, when
from core.display import volume as _volume
from core.i18n import N_, _, ngettext
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
    Welcome,
)
from core.service.reports import ChartData, DailyView, EquityData, ModelView
from core.trading.health import ServiceHealth
from core.trading.parameters import with_unit
from core.trading.reasons import localized_reason
from core.trading.types import RiskSettings


@render.register
def _problem(result: Problem) -> str:
    return _("Error: {text}").format(text=result.text)


@render.register
def _notice(result: Notice) -> str:
    return result.text


@render.register
def _welcome(result: Welcome) -> str:
    return result.text


def _columns(text: str) -> int:
    """How wide a text is on a terminal: Hangul and other wide characters take two columns."""
    return sum(2 if east_asian_width(ch) in "WF" else 1 for ch in text)


@render.register
def _help(result: HelpView) -> str:
    usages = [c.shown_usage for c in result.commands]
    width = max(_columns(u) for u in usages)
    return _("Commands:") + "\n" + "\n".join(f"{u}{' ' * (width - _columns(u))}  {c.shown_summary}"
                                             for u, c in zip(usages, result.commands))


def _position_line(p: PositionView) -> str:
    return _("{market}: {volume} at avg {avg}, now {price}, value {value}, P/L {ratio} ({amount}), since "
             "{since}").format(market=p.market, volume=_volume(p.volume), avg=krw(p.avg_price_krw),
                               price=krw(p.price_krw), value=krw(p.value_krw), ratio=percent(p.pnl_ratio),
                               amount=signed_krw(p.pnl_krw), since=when(p.opened_at))


def _cycle_line(at, seconds) -> str:
    if at is None:
        return _("no cycle yet")
    if seconds is None:
        return _("last cycle {time}").format(time=when(at))
    return _("last cycle {time} ({ms:.0f} ms)").format(time=when(at), ms=seconds * 1000)


@render.register
def _status(result: StatusView) -> str:
    trading = _("PAUSED (exits still run)") if result.paused else _("active")
    lines = [_("Mode: {mode}; trading {state}").format(mode=mode(result.mode), state=trading),
             _("{cycle}; next {time}").format(cycle=_cycle_line(result.now, result.last_cycle_seconds),
                                              time=when(result.next_cycle_at)),
             _("Markets: {markets}").format(markets=", ".join(result.markets))]
    lines += [service_line(s) for s in result.services]
    lines += [_("Equity {equity}, cash {cash}").format(equity=krw(result.equity_krw), cash=krw(result.cash_krw)),
              _("Open positions: {n}").format(n=len(result.positions))]
    lines += ["  " + _position_line(p) for p in result.positions]
    return "\n".join(lines)


SERVICE_NAMES = {"Upbit market data": N_("Upbit market data")}


def _service_name(name: str) -> str:
    return _(SERVICE_NAMES[name]) if name in SERVICE_NAMES else name


def service_line(health: ServiceHealth) -> str:
    name = _service_name(health.name)
    if health.up is None:
        return _("{name}: not contacted yet").format(name=name)
    if health.up:
        return _("{name}: OK, last contact {time}").format(name=name, time=when(health.last_success_at))
    text = _("{name}: UNREACHABLE since {time} ({error})").format(name=name, time=when(health.down_since),
                                                                  error=health.error)
    if health.last_success_at:
        text += _("; last success {time}").format(time=when(health.last_success_at))
    return text


@render.register
def _health(result: HealthView) -> str:
    uptime = result.now - result.started_at
    hours, rest = divmod(int(uptime.total_seconds()), 3600)
    head = _("autotrader {version}, {mode} mode, up {hours} h {minutes} min").format(
        version=result.version, mode=mode(result.mode), hours=hours, minutes=rest // 60)
    return "\n".join([head, _cycle_line(result.last_cycle_at, result.last_cycle_seconds),
                      *[service_line(s) for s in result.services]])


@render.register
def _version(result: VersionView) -> str:
    return _("autotrader {version} ({mode} mode, Python {python})").format(
        version=result.version, mode=mode(result.mode), python=result.python)


@render.register
def _alerts(result: AlertsView) -> str:
    return _("Your alerts:") + "\n" + "\n".join(f"{kind}: {preference} ({label(kind)})"
                                                for kind, preference in result.preferences)


@render.register
def _positions(result: PositionsView) -> str:
    if not result.positions:
        return _("No open positions.")
    return "\n".join(_position_line(p) for p in result.positions)


@render.register
def _balance(result: BalanceView) -> str:
    return "\n".join(balance_lines(result.cash_krw, result.positions_krw, result.equity_krw, result.principal_krw,
                                   result.fees_krw))


@render.register
def _profit(result: ProfitView) -> str:
    period = _("all time") if result.days is None else ngettext("last {n} day", "last {n} days",
                                                               result.days).format(n=result.days)
    change = result.equity_now_krw / result.equity_start_krw - 1.0 if result.equity_start_krw else 0.0
    won = _("Closed trades {trades}, won {wins}").format(trades=result.trades, wins=result.wins)
    if result.trades:
        won += f" ({result.wins / result.trades:.0%})"
    lines = [_("Profit, {period}:").format(period=period), won,
             _("Realised {amount} after fees").format(amount=signed_krw(result.realised_krw)),
             _("Equity {start} -> {now} ({ratio})").format(start=krw(result.equity_start_krw),
                                                           now=krw(result.equity_now_krw), ratio=percent(change))]
    if result.best is not None:
        lines.append(_("Best trade {best}, worst {worst}").format(best=percent(result.best), worst=percent(result.worst)))
    return "\n".join(lines)


@render.register
def _signals(result: SignalsView) -> str:
    lines = []
    for r in result.rows:
        text = _("{market} @ {time}: {action} (buy {buy:.2f} / hold {hold:.2f} / sell {sell:.2f})").format(
            market=r.market, time=when(r.candle_at), action=action(r.action), buy=r.buy, hold=r.hold, sell=r.sell)
        if r.expected_return is not None:
            text += _(", expected return {er}").format(er=percent(r.expected_return))
        text += _(", confidence {confidence:.2f}, emergency {emergency:.2f}").format(confidence=r.confidence,
                                                                                   emergency=r.emergency_score)
        if r.reason:
            text += "; " + localized_reason(r.reason_data, r.reason)
        lines.append(text)
    lines += [_("{market}: no signal now: {why}").format(market=m, why=why) for m, why in result.waiting]
    if not lines:
        return _("No signals yet.")
    return "\n".join([_rule_line(result.rule, result.entry_bar), *lines])


def _rule_line(rule: str, bar: float | None, cost: float | None = None) -> str:
    if rule == "expected_return" and bar is not None:
        if cost is not None:
            return _("Rule: expected_return: buy above an expected return of {bar} (a round trip's {cost:.2%} plus "
                     "entry_margin), sell below 0.").format(bar=percent(bar), cost=cost)
        return _("Rule: expected_return: buy above an expected return of {bar}, sell below 0.").format(bar=percent(bar))
    if rule == "expected_return":
        return _("Rule: expected_return")
    return _("Rule: threshold: buy or sell when that probability passes its threshold.")


@render.register
def _settings(result: SettingsView) -> str:
    risk: RiskSettings = result.risk
    chosen = dict(result.model_defaults)
    lines = [_rule_line(risk.decision_rule, result.entry_bar, result.round_trip_cost)]
    for f in fields(risk):
        value = getattr(risk, f.name)
        line = f"{f.name} = {with_unit(f.name, value)}"
        if f.name in chosen:
            same = str(chosen[f.name]) == str(value) or _close(chosen[f.name], value)
            line += _(" (the model's walk-forward default)") if same else \
                _(" (the model's walk-forward chose {value})").format(value=with_unit(f.name, chosen[f.name]))
        lines.append(line)
    return "\n".join(lines)


def _close(a, b) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-12
    except (TypeError, ValueError):
        return False


@render.register
def _sale(result: SaleView) -> str:
    lines = []
    for r in result.results:
        if r.error is not None:
            lines.append(_("{market}: sale FAILED: {error}").format(market=r.market, error=r.error))
            continue
        text = _("{market}: sold {volume} at {price}, {net} after fee").format(
            market=r.market, volume=_volume(r.fill.volume), price=krw(r.fill.price_krw),
            net=krw(r.fill.funds_krw - r.fill.fee_krw))
        if r.trade:
            text += _(", P/L {ratio}").format(ratio=percent(r.trade.return_ratio))
        lines.append(text)
    return "\n".join(lines)


def _period_label(start, period: str) -> str:
    if period == "week":
        return _("week of {day}").format(day=day(start))
    if period == "month":
        return f"{start:%Y-%m}"
    return day(start)


@render.register
def _daily(result: DailyView) -> str:
    if not result.rows:
        return _("No cycle has run yet.")
    return "\n".join(day_line({"day": _period_label(r.day, result.period), "equity_krw": r.equity_krw,
                               "change_krw": r.change_krw, "change_ratio": r.change_ratio, "trades": r.trades,
                               "realised_krw": r.realised_krw}) for r in result.rows)


@render.register
def _model(result: ModelView) -> str:
    lines = version_lines(result.registry) if result.registry is not None else []
    for r in result.rows:
        if r.error:
            lines.append(_("{market}: model metadata unreadable ({error})").format(market=r.market, error=r.error))
            continue
        if r.validation_log_loss is not None and r.validation_auc_buy is not None:
            metrics = _("validation log-loss {loss:.4f}, AUC buy {auc:.3f}").format(loss=r.validation_log_loss,
                                                                                   auc=r.validation_auc_buy)
        else:
            metrics = _("no validation metrics")
        scope = _("global") if r.scope == "global" else r.scope
        lines.append(_("{market}: {model} ({scope}), trained on {trained}, out-of-sample from {start}; "
                       "{metrics}").format(market=r.market, model=r.model_id, scope=scope, trained=r.trained_on,
                                           start=r.test_start, metrics=metrics))
    wf = result.walkforward
    if wf is not None:
        lines.append(_("Walk-forward, out of sample {first} .. {last} ({folds} folds): strategy {strategy}; "
                       "buy-and-hold {hold}; trend rule {trend}.").format(
            first=wf.first, last=wf.last, folds=wf.folds, strategy=_figures(wf.strategy),
            hold=_figures(wf.buy_and_hold), trend=_figures(wf.trend)))
    return "\n".join(lines)


def _figures(f: dict) -> str:
    sharpe = f"{f['sharpe']:.2f}" if f.get("sharpe") is not None else "-"
    text = _("{ret:+.1%}, Sharpe {sharpe}, max drawdown {drawdown:.1%}").format(
        ret=f["total_return"], sharpe=sharpe, drawdown=f["max_drawdown"])
    if f.get("trades") and f.get("profit_factor") is not None:
        text += _(", {trades} trades, profit factor {pf:.2f}").format(trades=f["trades"], pf=f["profit_factor"])
    return text


@render.register
def _chart(result: ChartData) -> str:
    return _("{market}: {candles} candles, {signals} BUY/SELL signals, {fills} fills").format(
        market=result.market, candles=len(result.candles), signals=len(result.signals), fills=len(result.fills))


@render.register
def _equity(result: EquityData) -> str:
    return _("Equity curve: {n} cycles, last {equity}").format(n=len(result.times), equity=krw(result.equity_krw[-1]))


@render.register
def _confirm(result: Confirm) -> str:
    return result.question
