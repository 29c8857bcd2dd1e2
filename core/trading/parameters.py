"""What does each risk parameter mean, in what unit, and what happens at an extreme value?

Users change thresholds and risk parameters by command. A value that switches trading off or makes it
trade on every candle is legal but rarely meant, so it is accepted with a one-line warning of its
consequence; a value that can never mean anything (a fall of 100% or more) is refused with the value
that does what was probably meant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.i18n import N_, _


@dataclass(frozen=True)
class Parameter:
    name: str
    unit: str  # probability | percent | positions | trades | hours | flag
    meaning: str  # N_-marked: shown with _()
    warning: Callable[[float], str | None] = lambda value: None
    refusal: Callable[[float], str | None] = lambda value: None


def _never_falls(name: str, what: str) -> Callable[[float], str | None]:
    return lambda v: (_("{name} {value:.0%}: a price cannot fall {value:.0%} or more; use 0 to switch the {what} "
                        "off").format(name=name, value=v, what=_(what)) if v >= 1 else None)


PARAMETERS = {p.name: p for p in (
    Parameter("buy_threshold", "probability", N_("BUY when the buy probability exceeds it (and the sell probability)"),
              lambda v: (_("no BUY can ever fire: a probability cannot exceed 1") if v >= 1 else
                         _("the model's BUY fires whenever buy > sell: it may trade on almost every candle")
                         if v <= 0.34 else None)),
    Parameter("sell_threshold", "probability", N_("model SELL when the sell probability exceeds it (and the buy one)"),
              lambda v: (_("the model never sells a position; only the stop-loss, take-profit, trailing stop and "
                         "emergency rules close one") if v >= 1 else
                         _("the model's SELL fires whenever sell > buy: positions may close on almost every candle")
                         if v <= 0.34 else None)),
    Parameter("emergency_threshold", "probability", N_("sell the whole position at once when sell x confidence exceeds it"),
              lambda v: (_("emergency sells are off (the score never exceeds 1)") if v >= 1 else
                         _("almost any sell probability triggers an emergency sale of a held position") if v <= 0.1
                         else None)),
    Parameter("max_positions", "positions", N_("open positions at most at once"),
              lambda v: _("no position will open (limit 0); /pause says the same more clearly") if v == 0 else None),
    Parameter("max_position_ratio", "percent", N_("largest share of equity put in one position"),
              lambda v: _("no position will open (max_position_ratio 0); /pause says the same more clearly") if v == 0 else
              _("one position may take all the equity: no diversification") if v >= 1 else None),
    Parameter("stop_loss", "percent", N_("sell when a position has lost this much (0 = off)"),
              lambda v: _("the stop-loss is off: a position can lose without limit until another rule sells it")
              if v == 0 else None, _never_falls("stop_loss", N_("stop-loss"))),
    Parameter("take_profit", "percent", N_("sell when a position has gained this much (0 = off)"),
              lambda v: _("the take-profit is off") if v == 0 else None),
    Parameter("trailing_stop", "percent", N_("sell when the price falls this much from its peak since entry, once in "
                                          "profit (0 = off)"),
              lambda v: _("the trailing stop is off") if v == 0 else None, _never_falls("trailing_stop", N_("trailing stop"))),
    Parameter("cooldown_hours", "hours", N_("wait this long after selling a market before buying it again")),
    Parameter("loss_pause_hours", "hours", N_("after max_consecutive_losses losing trades in a row, no buying for this "
                                           "long after the last sale")),
    Parameter("max_consecutive_losses", "trades", N_("stop buying (for loss_pause_hours) after this many losing trades "
                                                  "in a row"),
              lambda v: _("no position will open: the guard halts buying at 0 losing trades; /pause says the same "
                        "more clearly") if v == 0 else None),
    Parameter("daily_loss_limit", "percent", N_("stop buying for the rest of the UTC day after losing this share of the "
                                             "day's starting equity"),
              lambda v: _("buying halts whenever the day is not in profit (limit 0%)") if v == 0 else None),
    Parameter("shock_drop_1m", "percent", N_("price-shock guard: sell on a fall of this much within 1 minute (0 = off)"),
              lambda v: _("the 1-minute shock guard is off") if v == 0 else None, _never_falls("shock_drop_1m", N_("window"))),
    Parameter("shock_drop_3m", "percent", N_("price-shock guard: sell on a fall of this much within 3 minutes (0 = off)"),
              lambda v: _("the 3-minute shock guard is off") if v == 0 else None, _never_falls("shock_drop_3m", N_("window"))),
    Parameter("shock_drop_5m", "percent", N_("price-shock guard: sell on a fall of this much within 5 minutes (0 = off)"),
              lambda v: _("the 5-minute shock guard is off") if v == 0 else None, _never_falls("shock_drop_5m", N_("window"))),
    Parameter("decision_rule", "choice", N_("expected_return: trade on the calibrated expected return; threshold: on the "
                                         "buy/sell probability thresholds (the user guide's rule)")),
    Parameter("entry_margin", "percent", N_("expected_return rule: buy when the expected return beats a round trip's "
                                         "cost by this much"),
              lambda v: _("the rule buys whenever the expected return merely covers the costs: many more, weaker "
                        "trades") if v == 0 else None),
    Parameter("max_hold_hours", "hours", N_("expected_return rule: sell after this long without a new entry signal "
                                         "(0 = off)"),
              lambda v: _("positions are held until a rule sells them, not for the model's horizon") if v == 0 else None),
    Parameter("sizing", "choice", N_("fixed: max_position_ratio per position; kelly: kelly_fraction of Kelly's bet, "
                                  "capped by max_position_ratio")),
    Parameter("kelly_fraction", "percent", N_("sizing=kelly: the share of Kelly's bet taken"),
              lambda v: _("no position will open under kelly sizing") if v == 0 else None),
    Parameter("paused", "flag", N_("no new positions (exits still run)")),
)}


def warning_for(name: str, value: float) -> str | None:
    spec = PARAMETERS.get(name)
    return None if spec is None else spec.warning(value)


def refusal_for(name: str, value: float) -> str | None:
    spec = PARAMETERS.get(name)
    return None if spec is None else spec.refusal(value)


def with_unit(name: str, value) -> str:
    """`stop_loss = 3.0%`, `cooldown_hours = 6 h`: the value as users read it."""
    unit = PARAMETERS[name].unit if name in PARAMETERS else ""
    if unit == "percent":
        return f"{float(value) * 100:.1f}%"
    if unit == "hours":
        return f"{float(value):g} h"
    if unit == "flag":
        return _("yes") if value else _("no")
    if unit == "choice":
        return str(value)
    if unit == "probability":
        return f"{float(value):.2f}"
    return f"{value:g}" if isinstance(value, float) else str(value)
