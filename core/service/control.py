"""The commands that change something: pause and resume, thresholds and risk parameters, sales,
watched markets, and a chat's own registration and alert preferences.

Each is declared once with `@command` (core.service.registry); every change is persisted, audited
and announced by the agent (core.service.agent).
"""
from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timezone

from core.service.queries import market
from core.service.registry import Arg, Role, Source, UsageError, choice, command
from core.service.replies import AlertsView, Notice, PurchaseView, SaleView
from core.storage.settings_store import audit
from core.storage.users import PREFERENCES, register, set_preference, subscribers
from core.trading.events import KINDS
from core.trading.parameters import warning_for, with_unit
from core.trading.types import RiskSettings

THRESHOLDS = {"buy": "buy_threshold", "sell": "sell_threshold", "emergency": "emergency_threshold"}
PARAMETER_NAMES = ", ".join(f.name for f in fields(RiskSettings) if f.name != "paused")
TELEGRAM = frozenset({Source.TELEGRAM})


def parameter(text: str) -> str:
    name = text.lower()
    if name not in {f.name for f in fields(RiskSettings)} or name == "paused":
        raise UsageError(f"unknown parameter {text!r}; one of: {PARAMETER_NAMES}")
    return name


def _set(ctx, name: str, value: str, command_name: str) -> Notice:
    agent = ctx.agent
    try:
        new = agent.risk.with_value(name, value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    old = getattr(agent.risk, name)
    if not agent.change_settings(new, ctx.caller, command_name):
        return Notice(f"{name} is already {with_unit(name, old)}.")
    text = f"{name} set to {with_unit(name, getattr(new, name))} (was {with_unit(name, old)})."
    warning = warning_for(name, getattr(new, name))
    text += f"\nWarning: {warning}." if warning else ""
    if name in ("buy_threshold", "sell_threshold") and new.decision_rule != "threshold":
        text += (f"\nNote: the decision rule in force is {new.decision_rule}; {name} applies only after "
                 f"/set decision_rule threshold.")
    return Notice(text)


@command("pause", "/pause", "stop opening positions (exits and emergency sells still run)", role=Role.ADMIN)
def pause(ctx):
    if ctx.agent.risk.paused:
        return Notice("Trading is already paused.")
    ctx.agent.change_settings(replace(ctx.agent.risk, paused=True), ctx.caller, "pause")
    return Notice("Trading paused: no new positions. Stop-loss, take-profit and emergency sells still run.")


@command("resume", "/resume", "open positions again", role=Role.ADMIN)
def resume(ctx):
    if not ctx.agent.risk.paused:
        return Notice("Trading is not paused.")
    ctx.agent.change_settings(replace(ctx.agent.risk, paused=False), ctx.caller, "resume")
    return Notice("Trading resumed: new positions may open.")


@command("threshold", "/threshold buy|sell|emergency <0..1>", "set a signal threshold", role=Role.ADMIN,
         args=(Arg("which", choice(*THRESHOLDS)), Arg("value")))
def threshold(ctx, which: str, value: str):
    return _set(ctx, THRESHOLDS[which], value, "threshold")


@command("set", "/set <parameter> <value>", "set a risk parameter (see /settings)", role=Role.ADMIN,
         args=(Arg("parameter", parameter), Arg("value")),
         hint=f"expected a parameter and a value; parameters: {PARAMETER_NAMES}")
def set_(ctx, name: str, value: str):
    return _set(ctx, name, value, "set")


def _holding(ctx, name: str) -> str:
    if name not in ctx.agent.portfolio.positions:
        raise ValueError(f"no open position in {name}")
    return f"Sell the whole {name} position now at market price?"


@command("sell", "/sell <market>", "sell a whole position now, e.g. /sell KRW-BTC", role=Role.ADMIN,
         args=(Arg("market", market),), confirm=_holding)
def sell(ctx, name: str):
    _holding(ctx, name)
    return SaleView((ctx.agent.sell(name, ctx.caller, "sell"),))


def krw_amount(text: str) -> int:
    cleaned = text.replace(",", "").replace("_", "").lower().removesuffix("krw").removesuffix("원").strip()
    if not cleaned.isdigit():
        raise UsageError(f"the amount must be whole KRW such as 50000, got {text!r}")
    return int(cleaned)


def _buying(ctx, name: str, amount: int | None = None) -> str:
    agent = ctx.agent
    if name not in agent.markets:
        raise ValueError(f"not watching {name}: /markets add {name} first")
    if name in agent.portfolio.positions:
        raise ValueError(f"{name} is held already")
    price = agent.prices.get(name)
    if price is None:
        raise ValueError(f"no price for {name} yet: the first cycle after a start has not judged it")
    size = f"{amount:,} KRW" if amount is not None else \
        f"a full position ({agent.risk.max_position_ratio:.0%} of equity, about {agent.risk.max_position_ratio * agent.portfolio.equity(agent.prices):,.0f} KRW)"
    return f"Buy {name} for {size} now at market price (last {price:,.0f} KRW)?"


@command("buy", "/buy <market> [KRW]", "buy now through the engine's guards and limits, e.g. /buy KRW-BTC 50000",
         role=Role.ADMIN, args=(Arg("market", market), Arg("amount", krw_amount, optional=True)), confirm=_buying)
def buy(ctx, name: str, amount: int | None = None):
    _buying(ctx, name, amount)
    return PurchaseView(ctx.agent.buy(name, amount, ctx.caller))


def _anything_held(ctx) -> str | None:
    held = sorted(ctx.agent.portfolio.positions)
    return f"Sell every open position now ({', '.join(held)})?" if held else None


@command("sellall", "/sellall", "sell every open position now", role=Role.ADMIN, confirm=_anything_held)
def sellall(ctx):
    held = list(ctx.agent.portfolio.positions)
    if not held:
        return Notice("No open positions to sell.")
    return SaleView(tuple(ctx.agent.sell(m, ctx.caller, "sellall") for m in held))


@command("markets", "/markets [add|remove <market>]", "list, add or remove a watched market", role=Role.ADMIN,
         args=(Arg("action", choice("add", "remove"), optional=True), Arg("market", market, optional=True)))
def markets(ctx, action: str | None = None, name: str | None = None):
    if action is None:
        return Notice("Watching: " + ", ".join(ctx.agent.markets))
    if name is None:
        raise UsageError("expected add or remove and a market")
    return Notice(f"Watching: {', '.join(ctx.agent.change_markets(action, name, ctx.caller))}")


@command("start", "/start", "register for alerts (in your private chat with the bot) and show your role",
         sources=TELEGRAM)
def start(ctx):
    caller = ctx.caller
    role = "an admin" if caller.is_admin else "a viewer"
    if caller.chat_type != "private":
        # fills and balances are not for every member of a group: alerts go to the user's private chat
        register(ctx.agent.db, caller.user_id, caller.user_id, str(caller.role), datetime.now(timezone.utc))
        return Notice(f"Registered: you are {role}. Alerts go to your private chat with me, not to this group "
                      f"(open it and send /start there if you have not). An admin may send /alerts group on here "
                      f"to have this group receive them.")
    chat = caller.chat_id if caller.chat_id is not None else caller.user_id  # a private chat's id is the user's
    register(ctx.agent.db, caller.user_id, chat, str(caller.role), datetime.now(timezone.utc))
    return Notice(f"Registered: you are {role}; alerts will come to this chat. /help lists commands, /alerts "
                  f"chooses which alerts you get.")


def _kind(text: str) -> str:
    if text.lower() not in KINDS + ("group",):
        raise UsageError(f"unknown alert kind {text!r}; one of: {', '.join(KINDS)}, or group")
    return text.lower()


def _group_alerts(ctx, preference: str) -> Notice:
    """An admin's alerts to the group this is sent in (on) or back to their private chat (off)."""
    caller = ctx.caller
    if not caller.is_admin:
        raise UsageError("only an admin may send alerts to a group")
    if preference not in ("on", "off"):
        raise UsageError("expected /alerts group on or /alerts group off")
    if preference == "on" and caller.chat_type == "private":
        raise UsageError("send /alerts group on in the group that should receive the alerts")
    chat = caller.chat_id if preference == "on" else caller.user_id
    register(ctx.agent.db, caller.user_id, chat, str(caller.role), datetime.now(timezone.utc))
    with ctx.agent.db.begin() as conn:
        audit(conn, ctx.agent.clock(), caller.user_id, caller.source, "alerts",
              f"group {preference} (chat {chat})", True)
    if preference == "on":
        return Notice("Your alerts now go to this group. Warning: every member of this group will see signals, "
                      "fills, positions and balances. /alerts group off sends them back to your private chat.")
    return Notice("Your alerts go to your private chat again.")


@command("alerts", "/alerts <kind> on|off|silent, or /alerts group on|off (admin, in a group)",
         "choose which alerts you get, and where", sources=TELEGRAM,
         args=(Arg("kind", _kind, optional=True), Arg("preference", choice(*PREFERENCES), optional=True)))
def alerts(ctx, kind: str | None = None, preference: str | None = None):
    user_id = ctx.caller.user_id
    if kind is None:
        mine = next((s for s in subscribers(ctx.agent.db, {user_id: str(ctx.caller.role)}) if s.user_id == user_id),
                    None)
        if mine is None:
            raise ValueError("send /start first to receive alerts")
        return AlertsView(tuple((k, mine.preference(k)) for k in KINDS))
    if preference is None:
        raise UsageError("expected a kind and on, off or silent")
    if kind == "group":
        return _group_alerts(ctx, preference)
    set_preference(ctx.agent.db, user_id, kind, preference)
    return Notice(f"{kind} alerts: {preference}.")
