"""How the trade-history replies read: /trades, /performance, /buy and /logs (registered on bot.render)."""
from __future__ import annotations

from bot.render import render
from core.display import krw, percent, signed_krw, when
from core.display import volume as _volume
from core.i18n import N_, _, ngettext
from core.service.history import PerformanceView, TradesView
from core.service.replies import LogsView, PurchaseView

EXIT_WORDS = {"signal": N_("model"), "stop_loss": N_("stop-loss"), "take_profit": N_("take-profit"),
              "trailing_stop": N_("trailing stop"), "emergency": N_("emergency"), "time_exit": N_("held its horizon"),
              "manual": N_("by command"), "external": N_("outside the bot")}


def exit_word(kind) -> str:
    return _(EXIT_WORDS[str(kind)]) if str(kind) in EXIT_WORDS else str(kind)


@render.register
def _trades(result: TradesView) -> str:
    if not result.trades:
        return _("No closed trade yet.")
    lines = [_("Last {n} of {total} closed trades (P/L after both fees):").format(n=len(result.trades),
                                                                                 total=result.total)]
    for t in result.trades:
        prices = (f" {krw(t.entry_price_krw)} -> {krw(t.exit_price_krw)}," if t.entry_price_krw and t.exit_price_krw
                  else "")
        lines.append(_("{market}: {opened} -> {closed},{prices} exit {exit}, {amount} ({ratio})").format(
            market=t.market, opened=when(t.opened_at), closed=when(t.closed_at), prices=prices, exit=exit_word(t.kind),
            amount=signed_krw(t.proceeds_krw - t.cost_krw), ratio=percent(t.return_ratio)))
    return "\n".join(lines)


@render.register
def _performance(result: PerformanceView) -> str:
    if not result.rows:
        return _("No closed trade yet.")
    return "\n".join(ngettext("{market}: {n} trade, {wins} won, {amount}, mean {mean}",
                              "{market}: {n} trades, {wins} won, {amount}, mean {mean}", r.trades).format(
        market=r.market, n=r.trades, wins=r.wins, amount=signed_krw(r.realised_krw), mean=percent(r.mean_return))
        for r in result.rows)


@render.register
def _purchase(result: PurchaseView) -> str:
    r = result.result
    if r.error is not None or r.fill is None:
        return _("{market}: purchase FAILED: {error}").format(market=r.market, error=r.error)
    return _("{market}: bought {volume} at {price} for {funds} plus {fee} fee").format(
        market=r.market, volume=_volume(r.fill.volume), price=krw(r.fill.price_krw), funds=krw(r.fill.funds_krw),
        fee=krw(r.fill.fee_krw))


@render.register
def _logs(result: LogsView) -> str:
    return "\n".join(result.lines) if result.lines else _("No log line kept yet (warnings and worse are kept; -v "
                                                          "keeps all).")
