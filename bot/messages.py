"""What do users read about an event? The words for each event name of core.trading.events.

Events reach this module as data (a kind, a name, parameters) from the outbox; every notifier
(console, Telegram) renders them here, in the language of the chat it sends them to
(`with core.i18n.language(...)`). A row written before events were data (no name) is shown by the
text it was stored with.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from bot import model_view
from core.display import krw, percent, signed_krw, volume, when
from core.i18n import N_, _, ngettext
from core.storage.outbox import Alert
from core.trading.reasons import localized_reason

log = logging.getLogger(__name__)

LABELS = {"emergency": N_("🚨 EMERGENCY"), "account": N_("Account"), "exit": N_("Exit"), "fill": N_("Fill"),
          "signal": N_("Signal"), "error": N_("⚠️ Error"), "system": N_("System"), "summary": N_("Summary")}
EXIT_TITLES = {"stop_loss": N_("Stop-loss"), "take_profit": N_("Take-profit"), "trailing_stop": N_("Trailing stop"),
               "time_exit": N_("Holding period over"), "manual": N_("Manual sale")}
ACTIONS = {"BUY": N_("BUY"), "SELL": N_("SELL"), "HOLD": N_("HOLD")}
SIDES = {"bid": N_("buy"), "ask": N_("sell")}
MODES = {"paper": N_("paper"), "live": N_("live"), "paper (replay)": N_("paper (replay)")}


def label(kind: str) -> str:
    return _(LABELS[kind]) if kind in LABELS else kind


def action(name: str) -> str:
    return _(ACTIONS[name]) if name in ACTIONS else name


def mode(name: str) -> str:
    return _(MODES[name]) if name in MODES else name


def _side(name: str) -> str:
    return _(SIDES[name]) if name in SIDES else name


def _reason(p: dict) -> str:
    """The reason in the reader's language where its code was stored, else the stored text."""
    return localized_reason(p.get("reason_data"), p.get("reason", ""))


def _fill(market: str, p: dict) -> str:
    if p["side"] == "bid":
        return _("Bought {volume} {market} at {price}: {funds} + {fee} fee").format(
            volume=volume(p["volume"]), market=market, price=krw(p["price_krw"]), funds=krw(p["funds_krw"]),
            fee=krw(p["fee_krw"]))
    text = _("Sold {volume} {market} at {price}: {net} after fee").format(
        volume=volume(p["volume"]), market=market, price=krw(p["price_krw"]), net=krw(p["funds_krw"] - p["fee_krw"]))
    if "return_ratio" in p:
        text += _(", P/L {ratio} ({amount})").format(ratio=percent(p["return_ratio"]), amount=signed_krw(p["pnl_krw"]))
    return text


def _signal(market, p) -> str:
    outcome = _("traded") if p["traded"] else _("not traded: {reason}").format(reason=_reason(p))
    return _("{market} {action} signal: buy {buy:.2f} / hold {hold:.2f} / sell {sell:.2f}, confidence "
             "{confidence:.2f}; {outcome}").format(market=market, action=action(p["action"]), buy=p["buy"],
                                                   hold=p["hold"], sell=p["sell"], confidence=p["confidence"],
                                                   outcome=outcome)


def _warming(market, p) -> str:
    n = p.get("candles_needed")
    if n is None:
        return _("{market} is warming up: more history is needed before its first signal").format(market=market)
    return ngettext("{market} is warming up: {n} more candle of history needed before its first signal",
                    "{market} is warming up: {n} more candles of history needed before its first signal",
                    n).format(market=market, n=n)


def _changes(p) -> str:
    return ", ".join(f"{k}={v}" for k, v in p["changes"].items()) or _("no change")


def _flow(name: str) -> str:
    return {"deposit": _("deposit"), "withdrawal": _("withdrawal")}.get(name, name)


def schedule_text(p: dict) -> str:
    """When the cycles run (Runtime.schedule's data; `schedule` is the text of older rows)."""
    if "replay_speed" in p:
        speed = p["replay_speed"]
        return _("replaying as fast as possible") if speed <= 0 else \
            _("replaying {speed:g} candles per second").format(speed=speed)
    if "every_seconds" in p:
        return _("a cycle every {seconds:g} s").format(seconds=p["every_seconds"])
    if "first_cycle_at" in p:
        return _("first cycle at {time}").format(time=when(datetime.fromisoformat(p["first_cycle_at"])))
    return p.get("schedule", "")


RENDERERS: dict[str, Callable[[str | None, dict], str]] = {
    "signal": _signal,
    "bought": _fill,
    "sold": _fill,
    "emergency_sold": lambda m, p: _("EMERGENCY SELL {market}: {reason}.").format(market=m, reason=_reason(p))
    + " " + _fill(m, p),
    "exit_sold": lambda m, p: _("{title} {market}: {reason}.").format(
        title=_(EXIT_TITLES[p["exit"]]) if p["exit"] in EXIT_TITLES else p["exit"], market=m, reason=_reason(p))
    + " " + _fill(m, p),
    "warming_up": _warming,
    "emergency_failed": lambda m, p: _("EMERGENCY SELL {market} FAILED: {error}").format(market=m, error=p["error"]),
    "order_failed": lambda m, p: _("{market} {action} order failed: {error}").format(
        market=m, action=action(p["action"]), error=p["error"]),
    "skipped": lambda m, p: _("{market} skipped: {error}").format(market=m, error=p["error"]),
    "books_not_sane": lambda m, p: _("The books are not sane ({problem}): no buying until reconciliation with the "
                                     "exchange puts them right.").format(problem=p["problem"]),
    "order_never_arrived": lambda m, p: _("Order {identifier} ({side} {market}) never reached the exchange: nothing "
                                          "was traded.").format(identifier=p["identifier"], side=_side(p["side"]),
                                                                 market=m),
    "order_cancelled_empty": lambda m, p: _("Order {identifier} ({side} {market}) was cancelled with nothing "
                                            "executed.").format(identifier=p["identifier"], side=_side(p["side"]),
                                                                market=m),
    "order_settled": lambda m, p: _("Order {identifier} settled after a lost answer or restart: {fill}").format(
        identifier=p["identifier"], fill=_fill(m, p)),
    "cash_funding": lambda m, p: _("KRW on the account: {amount}; the books start from it (first "
                                   "reconciliation).").format(amount=krw(p["account_krw"])),
    "cash_moved": lambda m, p: _("KRW on the account is {account}, the books said {books}: a {flow} of {amount} (or a "
                                 "trade outside the bot) is adopted.").format(
        account=krw(p["account_krw"]), books=krw(p["books_krw"]), flow=_flow(p["flow"]), amount=krw(p["amount_krw"])),
    "coin_adopted": lambda m, p: (_("The account holds {volume} {market} more than the books (traded outside the "
                                    "bot?): adopted at {price}; the position is now {position}.") if p["more"] else
                                  _("The account holds {volume} {market} less than the books (traded outside the "
                                    "bot?): adopted at {price}; the position is now {position}.")).format(
        volume=volume(p["volume"]), market=m, price=krw(p["price_krw"]), position=volume(p["position_volume"])),
    "settings_changed": lambda m, p: _("Settings changed by {by}: {changes}").format(by=p["by"], changes=_changes(p)),
    "markets_changed": lambda m, p: (_("Markets changed by {by}: {market} added; now {markets}")
                                     if p["action"] == "add" else
                                     _("Markets changed by {by}: {market} removed; now {markets}")).format(
        by=p["by"], market=m or p.get("market", ""), markets=", ".join(p["markets"])),
}


def day_line(d: dict) -> str:
    return ngettext("{day}: equity {equity} ({change}, {ratio}), {trades} trade closed ({realised})",
                    "{day}: equity {equity} ({change}, {ratio}), {trades} trades closed ({realised})",
                    d["trades"]).format(day=d["day"], equity=krw(d["equity_krw"]), change=signed_krw(d["change_krw"]),
                                        ratio=percent(d["change_ratio"]), trades=d["trades"],
                                        realised=signed_krw(d["realised_krw"]))


def balance_lines(cash: float, positions: float, equity: float, principal: float, fees: float) -> list[str]:
    total = equity / principal - 1.0 if principal else 0.0
    return [_("Cash {amount}").format(amount=krw(cash)), _("Positions {amount}").format(amount=krw(positions)),
            _("Equity {equity} ({ratio} on {principal})").format(equity=krw(equity), ratio=percent(total),
                                                               principal=krw(principal)),
            _("Fees paid {amount}").format(amount=krw(fees))]


def _daily_summary(market, p) -> str:
    lines = [_("Daily summary")]
    lines += [day_line(d) for d in p["days"]]
    if not p["days"]:
        lines.append(_("No cycle has run yet."))
    lines += balance_lines(p["cash_krw"], p["positions_krw"], p["equity_krw"], p["principal_krw"], p["fees_krw"])
    lines += [_("{market}: {volume} at avg {avg}, now {price}, P/L {ratio} ({amount})").format(
        market=x["market"], volume=volume(x["volume"]), avg=krw(x["avg_price_krw"]), price=krw(x["price_krw"]),
        ratio=percent(x["pnl_ratio"]), amount=signed_krw(x["pnl_krw"])) for x in p["positions"]]
    if not p["positions"]:
        lines.append(_("No open positions."))
    return "\n".join(lines)


RENDERERS.update({
    "started": lambda m, p: _("autotrader started: {mode} mode, {markets}; {schedule}").format(
        mode=mode(p["mode"]), markets=", ".join(p["markets"]), schedule=schedule_text(p)),
    "stopped": lambda m, p: _("autotrader stopped"),
    "live_warning": lambda m, p: _("LIVE TRADING: real orders with real money on {url}. Limits: {order} per buy order, "
                                   "{daily} of buys per UTC day. /pause stops buying; /sellall sells every "
                                   "position.").format(url=p["url"], order=krw(p["max_order_krw"]),
                                                        daily=krw(p["max_daily_krw"])),
    "market_data_down": lambda m, p: _("No market data: {error}. No new signals until Upbit answers; open positions "
                                       "are kept; the bot keeps trying every cycle.").format(error=p["error"]),
    "market_data_back": lambda m, p: _("Market data is back: the cycles judge new candles again."),
    "price_stream_down": lambda m, p: _("Upbit's trade stream is down ({error}): the price-shock guard reads prices "
                                        "every {seconds:g} s until it is back.").format(error=p["error"],
                                                                                        seconds=p["poll_seconds"]),
    "price_stream_back": lambda m, p: _("Upbit's trade stream is back: every trade of a held coin is judged as it "
                                        "arrives."),
    "account_stream_down": lambda m, p: _("Upbit's account stream is down ({error}): orders and balances are "
                                          "reconciled before each cycle until it is back.").format(error=p["error"]),
    "account_stream_back": lambda m, p: _("Upbit's account stream is back: fills and balance changes are reconciled "
                                          "as they happen."),
    "job_failed": lambda m, p: _("The {job} failed; see the log. The next one will run.").format(job=job(p["job"])),
    "replay_started": lambda m, p: _("Replay started: {markets}, {ticks} candle closes from {first}").format(
        markets=", ".join(p["markets"]), ticks=p["ticks"], first=when(datetime.fromisoformat(p["first"]))),
    "replay_finished": lambda m, p: _("Replay finished: return {ret}, {trades} trades, max drawdown "
                                      "{drawdown}").format(ret=percent(p["total_return"]), trades=p["trades"],
                                                           drawdown=percent(p["max_drawdown"], signed=False)),
    "daily_summary": _daily_summary,
    "model_promoted": model_view.promoted,
    "challenger_rejected": model_view.rejected,
    "retrain_failed": lambda m, p: _("Retraining failed: {error}. Version {serving} keeps serving.").format(
        error=p["error"], serving=p["serving"]),
    "model_switched": lambda m, p: _("Model version {version} ({model}) serves from the next cycle, set by {by} "
                                     "(was version {previous}).").format(version=p["version"], model=p["model_id"],
                                                                         by=p["by"], previous=p["previous"]),
    "model_unusable": lambda m, p: _("The registry's serving model cannot be used: {note}").format(note=p["note"]),
})

JOBS = {"cycle": N_("cycle"), "price-shock guard": N_("price-shock guard"), "daily summary": N_("daily summary"),
        "model watch": N_("model watch"), "retraining": N_("retraining")}


def job(name: str) -> str:
    return _(JOBS[name]) if name in JOBS else name


def event_text(alert: Alert) -> str:
    """The alert's text in the current language."""
    if alert.name is None:
        return alert.text or ""
    render = RENDERERS.get(alert.name)
    if render is not None:
        try:
            return render(alert.market, alert.params)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError):  # a row this version reads wrongly
            log.warning("alert %s (%s) does not fit its words; shown as data", alert.id, alert.name, exc_info=True)
    # an event this version has no words for, or cannot read: say what it is rather than nothing or a crash
    return f"{alert.name}: " + ", ".join(f"{k}={v}" for k, v in alert.params.items())
