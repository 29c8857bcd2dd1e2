"""The Telegram face of the agent: a python-telegram-bot Application whose handlers only check who is
asking, hand the command to the runtime and format the answer. No trading logic lives here.

Every command the registry declares for Telegram gets one handler; the menu is generated from the
same declarations. Access: admins (TELEGRAM_ADMIN_IDS) may control, viewers (TELEGRAM_VIEWER_IDS) may
read; anyone else gets one short refusal per process and is otherwise ignored (logged with the
command name only). In a group the sender's user id decides, not the chat. A command asking for
confirmation gets "Yes" and "Cancel" buttons that work once, for the person who asked, for two
minutes. Commands run from new messages only: editing an old message into a command does nothing.
"""
from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import timezone

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    TypeHandler,
    filters,
)

from bot.dispatcher import split_text
from bot.views import render
from core.redaction import redact
from core.runtime.runtime import Runtime
from core.service.registry import Caller, Role, Source, commands_for, parse_command
from core.service.replies import Confirm
from core.service.reports import ChartData, EquityData

log = logging.getLogger(__name__)


@dataclass
class BotRuntime:
    """What the handlers share: the runtime, who may do what, and whom we refused already."""

    runtime: Runtime
    refused: set[int] = field(default_factory=set)

    @property
    def settings(self):
        return self.runtime.settings

    @property
    def roles(self) -> dict[int, Role]:
        roles = {uid: Role.VIEWER for uid in self.settings.telegram_viewer_ids}
        roles.update({uid: Role.ADMIN for uid in self.settings.telegram_admin_ids})
        return roles

    def caller(self, update: Update) -> Caller:
        chat = update.effective_chat
        return Caller(user_id=update.effective_user.id, source=Source.TELEGRAM,
                      role=self.roles[update.effective_user.id], chat_id=chat.id if chat else None,
                      chat_type=chat.type if chat else "private")


def _rt(context: ContextTypes.DEFAULT_TYPE) -> BotRuntime:
    return context.application.bot_data["runtime"]


async def reply(update: Update, text: str, **kwargs) -> None:
    for piece in split_text(html.escape(redact(text))):
        await update.effective_message.reply_text(piece, parse_mode="HTML", **kwargs)


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every handler: unknown users are refused once and stopped here; a button press
    is always answered, so no client is left spinning."""
    user = update.effective_user
    rt = _rt(context)
    message = update.effective_message
    on_behalf = message is not None and message.sender_chat is not None  # an anonymous admin, a channel
    if user is not None and user.id in rt.roles and not on_behalf:
        return
    if update.callback_query is not None:
        await update.callback_query.answer("This bot is private.")
    if user is None or on_behalf:  # a channel post, an anonymous group admin: nobody to authorise
        chat = update.effective_chat
        parsed = parse_command(message.text or "") if message is not None else None
        if parsed and chat is not None and chat.type != "channel" and chat.id not in rt.refused:
            rt.refused.add(chat.id)  # told once per chat
            await message.reply_text("Commands sent anonymously or on behalf of a chat cannot be authorised; "
                                     "send them as yourself.")
        log.warning("ignored %s sent on behalf of chat %s", f"/{parsed[0]}" if parsed else "a message",
                    chat.id if chat else None)
        raise ApplicationHandlerStop
    parsed = parse_command(message.text or "") if message is not None else None
    what = f"/{parsed[0]}" if parsed else ("a button" if update.callback_query else "a message")
    log.warning("ignored %s from unauthorised user %s", what, user.id)
    if user.id not in rt.refused and message is not None and update.callback_query is None:
        rt.refused.add(user.id)
        await message.reply_text("This bot is private.")
    raise ApplicationHandlerStop


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    result = await rt.runtime.command(update.effective_message.text, rt.caller(update), confirmed=False)
    if isinstance(result, Confirm):
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data=f"yes:{result.key}"),
                                          InlineKeyboardButton("Cancel", callback_data=f"no:{result.key}")]])
        await update.effective_message.reply_text(redact(result.question), reply_markup=keyboard)
        return
    if isinstance(result, (ChartData, EquityData)):
        from bot.charts import (  # matplotlib only when a picture is drawn
            chart_png,
            equity_png,
        )

        png = await asyncio.to_thread(chart_png if isinstance(result, ChartData) else equity_png, result)
        await update.effective_message.reply_photo(png, caption=render(result)[:1024])
        return
    await reply(update, render(result))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    query = update.callback_query
    answer, _, key = (query.data or "").partition(":")
    if answer not in ("yes", "no") or not key:
        await query.answer("Unknown button.")
        return
    await query.answer()
    if answer == "no":
        done = rt.runtime.service.cancel(key)
        await query.edit_message_text("Cancelled: nothing done." if done else "This question had expired already.")
        return
    result = await rt.runtime.confirm(key, rt.caller(update))
    await query.edit_message_text(html.escape(redact(render(result)))[:4096], parse_mode="HTML")


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Whatever a handler raised: logged (redacted, with its traceback), the sender gets a short
    apology, and the bot goes on."""
    log.error("a Telegram update could not be handled: %s", context.error, exc_info=context.error)
    if isinstance(update, Update):
        try:
            if update.callback_query is not None:
                await update.callback_query.answer("Sorry, that failed; the bot keeps running.")
            elif update.effective_message is not None:
                await update.effective_message.reply_text("Sorry, that failed unexpectedly; the bot keeps running "
                                                          "and the log has the details.")
        except Exception:  # Telegram itself may be what failed
            log.warning("could not tell the sender that their update failed")


def menu() -> list[BotCommand]:
    return [BotCommand(c.name, c.summary[:256]) for c in commands_for(Source.TELEGRAM)]


def build_application(bot_runtime: BotRuntime) -> Application:
    settings = bot_runtime.settings
    base = settings.telegram_api_base_url
    app = (Application.builder().token(settings.telegram_bot_token).base_url(base)
           .base_file_url(base[:-3] + "file/bot" if base.endswith("/bot") else base)
           .defaults(Defaults(tzinfo=timezone.utc)).build())
    app.bot_data["runtime"] = bot_runtime
    app.add_handler(TypeHandler(Update, gate), group=-1)
    names = [c.name for c in commands_for(Source.TELEGRAM)]
    app.add_handler(CommandHandler(names, on_command, filters=~filters.UpdateType.EDITED))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_error_handler(on_error)
    return app
