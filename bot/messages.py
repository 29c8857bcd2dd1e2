"""What do users read about an event? The words for each event name of core.trading.events.

Events reach this module as data (a kind, a name, parameters) from the outbox; every notifier
(console, Telegram) renders them here when it sends them, so each chat can be given its language.
A row written before events were data (no name) is shown by the text it was stored with.
"""
from __future__ import annotations

from typing import Callable

from bot.format import krw, percent, signed_krw, volume
from core.storage.outbox import Alert

LABELS = {"emergency": "🚨 EMERGENCY", "account": "Account", "exit": "Exit", "fill": "Fill", "signal": "Signal",
          "error": "⚠️ Error", "system": "System", "summary": "Summary"}
EXIT_TITLES = {"stop_loss": "Stop-loss", "take_profit": "Take-profit", "trailing_stop": "Trailing stop",
               "time_exit": "Holding period over", "manual": "Manual sale"}


def label(kind: str) -> str:
    return LABELS.get(kind, kind)


def _fill(market: str, p: dict) -> str:
    if p["side"] == "bid":
        return (f"Bought {volume(p['volume'])} {market} at {krw(p['price_krw'])}: {krw(p['funds_krw'])} + "
                f"{krw(p['fee_krw'])} fee")
    pnl = f", P/L {percent(p['return_ratio'])} ({signed_krw(p['pnl_krw'])})" if "return_ratio" in p else ""
    return f"Sold {volume(p['volume'])} {market} at {krw(p['price_krw'])}: {krw(p['funds_krw'] - p['fee_krw'])} after fee{pnl}"


def _signal(market, p) -> str:
    outcome = "traded" if p["traded"] else f"not traded: {p['reason']}"
    return (f"{market} {p['action']} signal: buy {p['buy']:.2f} / hold {p['hold']:.2f} / sell {p['sell']:.2f}, "
            f"confidence {p['confidence']:.2f}; {outcome}")


def _warming(market, p) -> str:
    n = p.get("candles_needed")
    if n is None:
        return f"{market} is warming up: more history is needed before its first signal"
    return f"{market} is warming up: {n} more candle{'s' if n != 1 else ''} of history needed before its first signal"


def _changes(p) -> str:
    return ", ".join(f"{k}={v}" for k, v in p["changes"].items()) or "no change"


RENDERERS: dict[str, Callable[[str | None, dict], str]] = {
    "signal": _signal,
    "bought": _fill,
    "sold": _fill,
    "emergency_sold": lambda m, p: f"EMERGENCY SELL {m}: {p['reason']}. {_fill(m, p)}",
    "exit_sold": lambda m, p: f"{EXIT_TITLES.get(p['exit'], p['exit'])} {m}: {p['reason']}. {_fill(m, p)}",
    "warming_up": _warming,
    "emergency_failed": lambda m, p: f"EMERGENCY SELL {m} FAILED: {p['error']}",
    "order_failed": lambda m, p: f"{m} {p['action']} order failed: {p['error']}",
    "skipped": lambda m, p: f"{m} skipped: {p['error']}",
    "books_not_sane": lambda m, p: (f"The books are not sane ({p['problem']}): no buying until reconciliation with "
                                    f"the exchange puts them right."),
    "order_never_arrived": lambda m, p: (f"Order {p['identifier']} ({p['side']} {m}) never reached the exchange: "
                                         f"nothing was traded."),
    "order_cancelled_empty": lambda m, p: f"Order {p['identifier']} ({p['side']} {m}) was cancelled with nothing executed.",
    "order_settled": lambda m, p: (f"Order {p['identifier']} settled after a lost answer or restart: "
                                   f"{_fill(m, p).split(':')[0]} ({krw(p['funds_krw'])}, fee {krw(p['fee_krw'])})."),
    "cash_funding": lambda m, p: f"KRW on the account: {krw(p['account_krw'])}; the books start from it (first reconciliation).",
    "cash_moved": lambda m, p: (f"KRW on the account is {krw(p['account_krw'])}, the books said {krw(p['books_krw'])}: "
                                f"a {p['flow']} of {krw(p['amount_krw'])} (or a trade outside the bot) is adopted."),
    "coin_adopted": lambda m, p: (f"The account holds {volume(p['volume'])} {m} {'more' if p['more'] else 'less'} than "
                                  f"the books (traded outside the bot?): adopted at {krw(p['price_krw'])}; the position "
                                  f"is now {volume(p['position_volume'])}."),
    "settings_changed": lambda m, p: f"Settings changed by {p['by']}: {_changes(p)}",
    "markets_changed": lambda m, p: (f"Markets changed by {p['by']}: {p['action']} {p['market']}; now "
                                     f"{', '.join(p['markets'])}"),
}


def _daily_summary(market, p) -> str:
    lines = ["Daily summary"]
    for d in p["days"]:
        lines.append(f"{d['day']}: equity {krw(d['equity_krw'])} ({signed_krw(d['change_krw'])}, "
                     f"{percent(d['change_ratio'])}), {d['trades']} trade{'s' if d['trades'] != 1 else ''} closed "
                     f"({signed_krw(d['realised_krw'])})")
    if not p["days"]:
        lines.append("No cycle has run yet.")
    total = p["equity_krw"] / p["principal_krw"] - 1.0 if p["principal_krw"] else 0.0
    lines += [f"Cash {krw(p['cash_krw'])}", f"Positions {krw(p['positions_krw'])}",
              f"Equity {krw(p['equity_krw'])} ({percent(total)} on {krw(p['principal_krw'])})",
              f"Fees paid {krw(p['fees_krw'])}"]
    lines += [f"{x['market']}: {volume(x['volume'])} at avg {krw(x['avg_price_krw'])}, now {krw(x['price_krw'])}, "
              f"P/L {percent(x['pnl_ratio'])} ({signed_krw(x['pnl_krw'])})" for x in p["positions"]]
    if not p["positions"]:
        lines.append("No open positions.")
    return "\n".join(lines)


RENDERERS.update({
    "started": lambda m, p: f"autotrader started: {p['mode']} mode, {', '.join(p['markets'])}; {p['schedule']}",
    "stopped": lambda m, p: "autotrader stopped",
    "live_warning": lambda m, p: (f"LIVE TRADING: real orders with real money on {p['url']}. Limits: "
                                  f"{krw(p['max_order_krw'])} per buy order, {krw(p['max_daily_krw'])} of buys per UTC "
                                  f"day. /pause stops buying; /sellall sells every position."),
    "market_data_down": lambda m, p: (f"No market data: {p['error']}. No new signals until Upbit answers; open "
                                      f"positions are kept; the bot keeps trying every cycle."),
    "market_data_back": lambda m, p: "Market data is back: the cycles judge new candles again.",
    "job_failed": lambda m, p: f"The {p['job']} failed; see the log. The next one will run.",
    "replay_started": lambda m, p: (f"Replay started: {', '.join(p['markets'])}, {p['ticks']} candle closes from "
                                    f"{p['first'][:16].replace('T', ' ')} UTC"),
    "replay_finished": lambda m, p: (f"Replay finished: return {percent(p['total_return'])}, {p['trades']} trades, "
                                     f"max drawdown {percent(p['max_drawdown'], signed=False)}"),
    "daily_summary": _daily_summary,
})


def event_text(alert: Alert) -> str:
    if alert.name is None:
        return alert.text or ""
    render = RENDERERS.get(alert.name)
    if render is None:  # an event this version has no words for: say what it is rather than nothing
        return f"{alert.name}: " + ", ".join(f"{k}={v}" for k, v in alert.params.items())
    return render(alert.market, alert.params)
