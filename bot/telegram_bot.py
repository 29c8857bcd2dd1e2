"""The Telegram face of the agent: a python-telegram-bot Application whose handlers only check who is
asking, call the command service and format the answer. No trading logic lives here.

Access: admins (TELEGRAM_ADMIN_IDS) may control, viewers (TELEGRAM_VIEWER_IDS) may read; anyone else
gets one short refusal per process and is otherwise ignored (the attempt is logged with the command
name only). In a group the sender's user id decides, not the chat.
"""
from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    TypeHandler,
)

from bot.charts import chart_png, equity_png
from bot.dispatcher import split_text
from bot.views import render
from core.redaction import redact
from core.service.agent import Agent, Caller
from core.service.commands import COMMANDS, CommandService, Confirm, parse_command
from core.service.reports import ChartData, EquityData
from core.service.settings import Settings
from core.storage.users import PREFERENCES, register, set_preference, subscribers
from core.trading.events import KINDS

log = logging.getLogger(__name__)

EXTRA_COMMANDS = (("start", "register this chat for alerts and show your role"),
                  ("alerts", "/alerts <kind> on|off|silent: choose which alerts you get"))


@dataclass
class BotRuntime:
    """What the handlers and jobs share. `lock` keeps a command from running inside a cycle."""

    settings: Settings
    agent: Agent
    service: CommandService
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refused: set[int] = field(default_factory=set)
    cycle_running: bool = False

    @property
    def roles(self) -> dict[int, str]:
        roles = {uid: "viewer" for uid in self.settings.telegram_viewer_ids}
        roles.update({uid: "admin" for uid in self.settings.telegram_admin_ids})
        return roles

    def subscribers(self):
        return subscribers(self.agent.db, self.roles)

    def caller(self, user_id: int) -> Caller:
        return Caller(user_id, "telegram", self.roles[user_id])


def _rt(context: ContextTypes.DEFAULT_TYPE) -> BotRuntime:
    return context.application.bot_data["runtime"]


async def reply(update: Update, text: str, **kwargs) -> None:
    for piece in split_text(html.escape(redact(text))):
        await update.effective_message.reply_text(piece, parse_mode="HTML", **kwargs)


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every handler: unknown users are refused once and stopped here."""
    user = update.effective_user
    if user is None:
        raise ApplicationHandlerStop
    rt = _rt(context)
    if user.id in rt.roles:
        return
    message = update.effective_message
    parsed = parse_command(message.text or "") if message is not None else None
    what = f"/{parsed[0]}" if parsed else ("a button" if update.callback_query else "a message")
    log.warning("ignored %s from unauthorised user %s", what, user.id)
    if user.id not in rt.refused and message is not None:
        rt.refused.add(user.id)
        await message.reply_text("This bot is private.")
    raise ApplicationHandlerStop


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    async with rt.lock:
        result = rt.service.handle(update.effective_message.text, rt.caller(update.effective_user.id))
    if isinstance(result, (ChartData, EquityData)):
        png = await asyncio.to_thread(chart_png if isinstance(result, ChartData) else equity_png, result)
        await update.effective_message.reply_photo(png, caption=render(result)[:1024])
        return
    await reply(update, render(result))


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    user, chat = update.effective_user, update.effective_chat
    role = rt.roles[user.id]
    register(rt.agent.db, user.id, chat.id, role, datetime.now(timezone.utc))
    await reply(update, f"Registered: you are {'an admin' if role == 'admin' else 'a viewer'}; alerts will come to "
                        f"this chat. /help lists commands, /alerts chooses which alerts you get.")


async def on_alerts(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    args = context.args or []
    user_id = update.effective_user.id
    if not args:
        mine = next((s for s in rt.subscribers() if s.user_id == user_id), None)
        if mine is None:
            await reply(update, "Send /start first to receive alerts.")
            return
        await reply(update, "Your alerts:\n" + "\n".join(f"{k}: {mine.preference(k)}" for k in KINDS))
        return
    if len(args) != 2:
        await reply(update, f"Error: usage: /alerts <kind> on|off|silent; kinds: {', '.join(KINDS)}")
        return
    kind, preference = args[0].lower(), args[1].lower()
    try:
        set_preference(rt.agent.db, user_id, kind, preference)
    except ValueError as exc:
        await reply(update, f"Error: {exc}; usage: /alerts <kind> {'|'.join(PREFERENCES)}")
        return
    await reply(update, f"{kind} alerts: {preference}.")


async def on_sell(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/sell and /sellall ask for a tap on a button before anything is sold."""
    rt = _rt(context)
    async with rt.lock:
        result = rt.service.handle(update.effective_message.text, rt.caller(update.effective_user.id), confirmed=False)
    if not isinstance(result, Confirm):
        await reply(update, render(result))
        return
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes, sell", callback_data=result.command[1:]),
                                      InlineKeyboardButton("Cancel", callback_data="cancel")]])
    await update.effective_message.reply_text(result.question, reply_markup=keyboard)


async def on_confirm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    query = update.callback_query
    await query.answer()
    if query.data == "cancel":
        await query.edit_message_text("Cancelled: nothing sold.")
        return
    if not (query.data == "sellall" or query.data.startswith("sell ")):
        await query.edit_message_text("Unknown action.")
        return
    async with rt.lock:
        result = rt.service.handle(f"/{query.data}", rt.caller(query.from_user.id))
    await query.edit_message_text(html.escape(render(result))[:4096], parse_mode="HTML")


def menu() -> list[BotCommand]:
    items = [(c.name, c.summary) for c in COMMANDS] + list(EXTRA_COMMANDS)
    return [BotCommand(name, summary[:256]) for name, summary in items]


def build_application(runtime: BotRuntime, post_init=None, post_stop=None) -> Application:
    settings = runtime.settings
    base = settings.telegram_api_base_url
    builder = (Application.builder().token(settings.telegram_bot_token).base_url(base)
               .base_file_url(base[:-3] + "file/bot" if base.endswith("/bot") else base)
               .defaults(Defaults(tzinfo=timezone.utc)))
    if post_init is not None:
        builder = builder.post_init(post_init)
    if post_stop is not None:
        builder = builder.post_stop(post_stop)
    app = builder.build()
    app.bot_data["runtime"] = runtime
    app.add_handler(TypeHandler(Update, gate), group=-1)
    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(CommandHandler("alerts", on_alerts))
    app.add_handler(CommandHandler(["sell", "sellall"], on_sell))
    app.add_handler(CommandHandler([c.name for c in COMMANDS if c.name not in ("sell", "sellall")], on_command))
    app.add_handler(CallbackQueryHandler(on_confirm))
    return app
