"""What does each risk parameter mean, in what unit, and what happens at an extreme value?

Users change thresholds and risk parameters by command. A value that switches trading off or makes it
trade on every candle is legal but rarely meant, so it is accepted with a one-line warning of its
consequence; a value that can never mean anything (a fall of 100% or more) is refused with the value
that does what was probably meant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Parameter:
    name: str
    unit: str  # probability | percent | positions | trades | hours | flag
    meaning: str
    warning: Callable[[float], str | None] = lambda value: None
    refusal: Callable[[float], str | None] = lambda value: None


def _never_falls(name: str, what: str) -> Callable[[float], str | None]:
    return lambda v: (f"{name} {v:.0%}: a price cannot fall {v:.0%} or more; use 0 to switch the {what} off"
                      if v >= 1 else None)


PARAMETERS = {p.name: p for p in (
    Parameter("buy_threshold", "probability", "BUY when the buy probability exceeds it (and the sell probability)",
              lambda v: ("no BUY can ever fire: a probability cannot exceed 1" if v >= 1 else
                         "the model's BUY fires whenever buy > sell: it may trade on almost every candle"
                         if v <= 0.34 else None)),
    Parameter("sell_threshold", "probability", "model SELL when the sell probability exceeds it (and the buy one)",
              lambda v: ("the model never sells a position; only the stop-loss, take-profit, trailing stop and "
                         "emergency rules close one" if v >= 1 else
                         "the model's SELL fires whenever sell > buy: positions may close on almost every candle"
                         if v <= 0.34 else None)),
    Parameter("emergency_threshold", "probability", "sell the whole position at once when sell x confidence exceeds it",
              lambda v: ("emergency sells are off (the score never exceeds 1)" if v >= 1 else
                         "almost any sell probability triggers an emergency sale of a held position" if v <= 0.1
                         else None)),
    Parameter("max_positions", "positions", "open positions at most at once",
              lambda v: "no position will open (limit 0); /pause says the same more clearly" if v == 0 else None),
    Parameter("max_position_ratio", "percent", "largest share of equity put in one position",
              lambda v: "no position will open (0% of equity); /pause says the same more clearly" if v == 0 else
              "one position may take all the equity: no diversification" if v >= 1 else None),
    Parameter("stop_loss", "percent", "sell when a position has lost this much (0 = off)",
              lambda v: "the stop-loss is off: a position can lose without limit until another rule sells it"
              if v == 0 else None, _never_falls("stop_loss", "stop-loss")),
    Parameter("take_profit", "percent", "sell when a position has gained this much (0 = off)",
              lambda v: "the take-profit is off" if v == 0 else None),
    Parameter("trailing_stop", "percent", "sell when the price falls this much from its peak since entry, once in "
                                          "profit (0 = off)",
              lambda v: "the trailing stop is off" if v == 0 else None, _never_falls("trailing_stop", "trailing stop")),
    Parameter("cooldown_hours", "hours", "wait this long after selling a market before buying it again"),
    Parameter("loss_pause_hours", "hours", "after max_consecutive_losses losing trades in a row, no buying for this "
                                           "long after the last sale"),
    Parameter("max_consecutive_losses", "trades", "stop buying (for loss_pause_hours) after this many losing trades "
                                                  "in a row",
              lambda v: "no position will open: the guard halts buying at 0 losing trades; /pause says the same "
                        "more clearly" if v == 0 else None),
    Parameter("daily_loss_limit", "percent", "stop buying for the rest of the UTC day after losing this share of the "
                                             "day's starting equity",
              lambda v: "buying halts whenever the day is not in profit (limit 0%)" if v == 0 else None),
    Parameter("shock_drop_1m", "percent", "price-shock guard: sell on a fall of this much within 1 minute (0 = off)",
              lambda v: "the 1-minute shock guard is off" if v == 0 else None, _never_falls("shock_drop_1m", "window")),
    Parameter("shock_drop_3m", "percent", "price-shock guard: sell on a fall of this much within 3 minutes (0 = off)",
              lambda v: "the 3-minute shock guard is off" if v == 0 else None, _never_falls("shock_drop_3m", "window")),
    Parameter("shock_drop_5m", "percent", "price-shock guard: sell on a fall of this much within 5 minutes (0 = off)",
              lambda v: "the 5-minute shock guard is off" if v == 0 else None, _never_falls("shock_drop_5m", "window")),
    Parameter("decision_rule", "choice", "expected_return: trade on the calibrated expected return; threshold: on the "
                                         "buy/sell probability thresholds (the user guide's rule)"),
    Parameter("entry_margin", "percent", "expected_return rule: buy when the expected return beats a round trip's "
                                         "cost by this much",
              lambda v: "the rule buys whenever the expected return merely covers the costs: many more, weaker "
                        "trades" if v == 0 else None),
    Parameter("max_hold_hours", "hours", "expected_return rule: sell after this long without a new entry signal "
                                         "(0 = off)",
              lambda v: "positions are held until a rule sells them, not for the model's horizon" if v == 0 else None),
    Parameter("sizing", "choice", "fixed: max_position_ratio per position; kelly: kelly_fraction of Kelly's bet, "
                                  "capped by max_position_ratio"),
    Parameter("kelly_fraction", "percent", "sizing=kelly: the share of Kelly's bet taken",
              lambda v: "no position will open under kelly sizing" if v == 0 else None),
    Parameter("paused", "flag", "no new positions (exits still run)"),
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
        return "yes" if value else "no"
    if unit == "choice":
        return str(value)
    if unit == "probability":
        return f"{float(value):.2f}"
    return f"{value:g}" if isinstance(value, float) else str(value)
