"""How the trade-history replies read: /trades, /performance, /buy and /logs (registered on bot.render)."""
from __future__ import annotations

from bot.format import krw, percent, signed_krw, when
from bot.format import volume as _volume
from bot.render import render
from core.service.history import PerformanceView, TradesView
from core.service.replies import LogsView, PurchaseView

EXIT_WORDS = {"signal": "model", "stop_loss": "stop-loss", "take_profit": "take-profit", "trailing_stop": "trailing stop",
              "emergency": "emergency", "time_exit": "held its horizon", "manual": "by command",
              "external": "outside the bot"}


@render.register
def _(result: TradesView) -> str:
    if not result.trades:
        return "No closed trade yet."
    lines = [f"Last {len(result.trades)} of {result.total} closed trades (P/L after both fees):"]
    for t in result.trades:
        prices = (f" {krw(t.entry_price_krw)} -> {krw(t.exit_price_krw)}," if t.entry_price_krw and t.exit_price_krw
                  else "")
        lines.append(f"{t.market}: {when(t.opened_at)} -> {when(t.closed_at)},{prices} "
                     f"exit {EXIT_WORDS.get(str(t.kind), str(t.kind))}, {signed_krw(t.proceeds_krw - t.cost_krw)} "
                     f"({percent(t.return_ratio)})")
    return "\n".join(lines)


@render.register
def _(result: PerformanceView) -> str:
    if not result.rows:
        return "No closed trade yet."
    return "\n".join(f"{r.market}: {r.trades} trade{'s' if r.trades != 1 else ''}, {r.wins} won, "
                     f"{signed_krw(r.realised_krw)}, mean {percent(r.mean_return)}" for r in result.rows)


@render.register
def _(result: PurchaseView) -> str:
    r = result.result
    if r.error is not None or r.fill is None:
        return f"{r.market}: purchase FAILED: {r.error}"
    return (f"{r.market}: bought {_volume(r.fill.volume)} at {krw(r.fill.price_krw)} for {krw(r.fill.funds_krw)} "
            f"plus {krw(r.fill.fee_krw)} fee")


@render.register
def _(result: LogsView) -> str:
    return "\n".join(result.lines) if result.lines else "No log line kept yet (warnings and worse are kept; -v keeps all)."
