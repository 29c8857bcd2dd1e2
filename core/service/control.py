"""The commands that change something: pause and resume, thresholds and risk parameters, sales,
watched markets, and a chat's own registration and alert preferences.

Each is declared once with `@command` (core.service.registry); every change is persisted, audited
and announced by the agent (core.service.agent).
"""
from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timezone

from core.display import krw
from core.i18n import LANGUAGES, N_, _, check_language, default_language, language
from core.service.queries import market
from core.service.registry import Arg, Role, Source, UsageError, choice, command
from core.service.replies import AlertsView, Notice, PurchaseView, SaleView, Welcome
from core.storage.settings_store import audit
from core.storage.users import PREFERENCES, chat_language, register, set_chat_language, set_preference, subscribers
from core.trading.events import KINDS
from core.trading.parameters import warning_for, with_unit
from core.trading.types import RiskSettings

THRESHOLDS = {"buy": "buy_threshold", "sell": "sell_threshold", "emergency": "emergency_threshold"}
PARAMETER_NAMES = ", ".join(f.name for f in fields(RiskSettings) if f.name != "paused")
TELEGRAM = frozenset({Source.TELEGRAM})


def parameter(text: str) -> str:
    name = text.lower()
    if name not in {f.name for f in fields(RiskSettings)} or name == "paused":
        raise UsageError(_("unknown parameter {text!r}; one of: {names}").format(text=text[:64], names=PARAMETER_NAMES))
    return name


def check_language_arg(text: str) -> str:
    try:
        return check_language(text)
    except ValueError:
        raise UsageError(_("expected {options}, got {text!r}").format(options=" | ".join(LANGUAGES), text=text[:64])) \
            from None


def _set(ctx, name: str, value: str, command_name: str) -> Notice:
    agent = ctx.agent
    try:
        new = agent.risk.with_value(name, value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    old = getattr(agent.risk, name)
    if not agent.change_settings(new, ctx.caller, command_name):
        return Notice(_("{name} is already {value}.").format(name=name, value=with_unit(name, old)))
    text = _("{name} set to {value} (was {old}).").format(name=name, value=with_unit(name, getattr(new, name)),
                                                         old=with_unit(name, old))
    warning = warning_for(name, getattr(new, name))
    text += "\n" + _("Warning: {warning}.").format(warning=warning) if warning else ""
    if name in ("buy_threshold", "sell_threshold") and new.decision_rule != "threshold":
        text += "\n" + _("Note: the decision rule in force is {rule}; {name} applies only after /set decision_rule "
                         "threshold.").format(rule=new.decision_rule, name=name)
    return Notice(text)


@command("pause", "/pause", N_("stop opening positions (exits and emergency sells still run)"), role=Role.ADMIN)
def pause(ctx):
    if ctx.agent.risk.paused:
        return Notice(_("Trading is already paused."))
    ctx.agent.change_settings(replace(ctx.agent.risk, paused=True), ctx.caller, "pause")
    return Notice(_("Trading paused: no new positions. Stop-loss, take-profit and emergency sells still run."))


@command("resume", "/resume", N_("open positions again"), role=Role.ADMIN)
def resume(ctx):
    if not ctx.agent.risk.paused:
        return Notice(_("Trading is not paused."))
    ctx.agent.change_settings(replace(ctx.agent.risk, paused=False), ctx.caller, "resume")
    return Notice(_("Trading resumed: new positions may open."))


@command("threshold", N_("/threshold buy|sell|emergency <0..1>"), N_("set a signal threshold"), role=Role.ADMIN,
         args=(Arg("which", choice(*THRESHOLDS)), Arg("value")))
def threshold(ctx, which: str, value: str):
    return _set(ctx, THRESHOLDS[which], value, "threshold")


@command("set", N_("/set <parameter> <value>"), N_("set a risk parameter (see /settings)"), role=Role.ADMIN,
         args=(Arg("parameter", parameter), Arg("value")),
         hint=N_("expected a parameter and a value; /settings lists the parameters"))
def set_(ctx, name: str, value: str):
    return _set(ctx, name, value, "set")


def _holding(ctx, name: str) -> str:
    if name not in ctx.agent.portfolio.positions:
        raise ValueError(_("no open position in {market}").format(market=name))
    return _("Sell the whole {market} position now at market price?").format(market=name)


@command("sell", N_("/sell <market>"), N_("sell a whole position now, e.g. /sell KRW-BTC"), role=Role.ADMIN,
         args=(Arg("market", market),), confirm=_holding)
def sell(ctx, name: str):
    _holding(ctx, name)
    return SaleView((ctx.agent.sell(name, ctx.caller, "sell"),))


def krw_amount(text: str) -> int:
    cleaned = text.replace(",", "").replace("_", "").lower().removesuffix("krw").removesuffix("원").strip()
    if not cleaned.isdigit():
        raise UsageError(_("the amount must be whole KRW such as 50000, got {text!r}").format(text=text[:64]))
    return int(cleaned)


def _buying(ctx, name: str, amount: int | None = None) -> str:
    agent = ctx.agent
    if name not in agent.markets:
        raise ValueError(_("not watching {market}: /markets add {market} first").format(market=name))
    if name in agent.portfolio.positions:
        raise ValueError(_("{market} is held already").format(market=name))
    price = agent.prices.get(name)
    if price is None:
        raise ValueError(_("no price for {market} yet: the first cycle after a start has not judged it").format(
            market=name))
    if amount is not None:
        return _("Buy {market} for {amount} now at market price (last {price})?").format(
            market=name, amount=krw(amount), price=krw(price))
    ratio = agent.risk.max_position_ratio
    return _("Buy {market} for a full position ({ratio:.0%} of equity, about {amount}) now at market price (last "
             "{price})?").format(market=name, ratio=ratio, amount=krw(ratio * agent.portfolio.equity(agent.prices)),
                                 price=krw(price))


@command("buy", N_("/buy <market> [KRW]"), N_("buy now through the engine's guards and limits, e.g. /buy KRW-BTC 50000"),
         role=Role.ADMIN, args=(Arg("market", market), Arg("amount", krw_amount, optional=True)), confirm=_buying)
def buy(ctx, name: str, amount: int | None = None):
    _buying(ctx, name, amount)
    return PurchaseView(ctx.agent.buy(name, amount, ctx.caller))


def _anything_held(ctx) -> str | None:
    held = sorted(ctx.agent.portfolio.positions)
    return _("Sell every open position now ({markets})?").format(markets=", ".join(held)) if held else None


@command("sellall", "/sellall", N_("sell every open position now"), role=Role.ADMIN, confirm=_anything_held)
def sellall(ctx):
    held = list(ctx.agent.portfolio.positions)
    if not held:
        return Notice(_("No open positions to sell."))
    return SaleView(tuple(ctx.agent.sell(m, ctx.caller, "sellall") for m in held))


@command("markets", N_("/markets [add|remove <market>]"), N_("list, add or remove a watched market"), role=Role.ADMIN,
         args=(Arg("action", choice("add", "remove"), optional=True), Arg("market", market, optional=True)))
def markets(ctx, action: str | None = None, name: str | None = None):
    if action is None:
        return Notice(_("Watching: {markets}").format(markets=", ".join(ctx.agent.markets)))
    if name is None:
        raise UsageError(_("expected add or remove and a market"))
    return Notice(_("Watching: {markets}").format(markets=", ".join(ctx.agent.change_markets(action, name, ctx.caller))))


@command("start", "/start", N_("register for alerts (in your private chat with the bot) and show your role"),
         sources=TELEGRAM)
def start(ctx):
    caller = ctx.caller
    role = _("an admin") if caller.is_admin else _("a viewer")
    if caller.chat_type != "private":
        # fills and balances are not for every member of a group: alerts go to the user's private chat
        register(ctx.agent.db, caller.user_id, caller.user_id, str(caller.role), datetime.now(timezone.utc))
        return Notice(_("Registered: you are {role}. Alerts go to your private chat with me, not to this group (open "
                        "it and send /start there if you have not). An admin may send /alerts group on here to have "
                        "this group receive them.").format(role=role))
    chat = caller.chat_id if caller.chat_id is not None else caller.user_id  # a private chat's id is the user's
    register(ctx.agent.db, caller.user_id, chat, str(caller.role), datetime.now(timezone.utc))
    return Welcome(_("Registered: you are {role}; alerts will come to this chat. /help lists commands, /alerts "
                     "chooses which alerts you get, /language ko|en the language.").format(role=role))


def _kind(text: str) -> str:
    if text.lower() not in KINDS + ("group",):
        raise UsageError(_("unknown alert kind {text!r}; one of: {kinds}, or group").format(text=text[:64],
                                                                                             kinds=", ".join(KINDS)))
    return text.lower()


def _group_alerts(ctx, preference: str) -> Notice:
    """An admin's alerts to the group this is sent in (on) or back to their private chat (off)."""
    caller = ctx.caller
    if not caller.is_admin:
        raise UsageError(_("only an admin may send alerts to a group"))
    if preference not in ("on", "off"):
        raise UsageError(_("expected /alerts group on or /alerts group off"))
    if preference == "on" and caller.chat_type == "private":
        raise UsageError(_("send /alerts group on in the group that should receive the alerts"))
    chat = caller.chat_id if preference == "on" else caller.user_id
    register(ctx.agent.db, caller.user_id, chat, str(caller.role), datetime.now(timezone.utc))
    with ctx.agent.db.begin() as conn:
        audit(conn, ctx.agent.clock(), caller.user_id, caller.source, "alerts",
              f"group {preference} (chat {chat})", True)
    if preference == "on":
        return Notice(_("Your alerts now go to this group. Warning: every member of this group will see signals, "
                        "fills, positions and balances. /alerts group off sends them back to your private chat."))
    return Notice(_("Your alerts go to your private chat again."))


@command("alerts", N_("/alerts <kind> on|off|silent, or /alerts group on|off (admin, in a group)"),
         N_("choose which alerts you get, and where"), sources=TELEGRAM,
         args=(Arg("kind", _kind, optional=True), Arg("preference", choice(*PREFERENCES), optional=True)))
def alerts(ctx, kind: str | None = None, preference: str | None = None):
    user_id = ctx.caller.user_id
    if kind is None:
        mine = next((s for s in subscribers(ctx.agent.db, {user_id: str(ctx.caller.role)}) if s.user_id == user_id),
                    None)
        if mine is None:
            raise ValueError(_("send /start first to receive alerts"))
        return AlertsView(tuple((k, mine.preference(k)) for k in KINDS))
    if preference is None:
        raise UsageError(_("expected a kind and on, off or silent"))
    if kind == "group":
        return _group_alerts(ctx, preference)
    set_preference(ctx.agent.db, user_id, kind, preference)
    return Notice(_("{kind} alerts: {preference}.").format(kind=kind, preference=preference))


LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}


@command("language", N_("/language [ko|en]"), N_("the language this chat reads the bot in (한국어: /language ko)"),
         args=(Arg("language", check_language_arg, optional=True),))
def language_(ctx, code: str | None = None):
    caller = ctx.caller
    if code is None:
        shown = caller.language or chat_language(ctx.agent.db, caller.chat_key)
        current = shown or default_language()
        return Notice(_("This chat reads the bot in {name}; /language ko or /language en changes it.").format(
            name=LANGUAGE_NAMES[current]))
    at = ctx.agent.clock()
    set_chat_language(ctx.agent.db, caller.chat_key, code, datetime.now(timezone.utc))
    with ctx.agent.db.begin() as conn:
        audit(conn, at, caller.user_id, caller.source, "language", f"chat {caller.chat_key}: {code}", True)
    with language(code):  # the answer is in the language chosen
        return Notice(_("From now on this chat reads the bot in {name}.").format(name=LANGUAGE_NAMES[code]))
