"""The Telegram face of the agent: a python-telegram-bot Application whose handlers only check who is
asking, hand the command to the runtime and format the answer. No trading logic lives here.

Every command the registry declares for Telegram gets one handler; the menu is generated from the
same declarations. Access: admins (TELEGRAM_ADMIN_IDS) may control, viewers (TELEGRAM_VIEWER_IDS) may
read; anyone else gets one short refusal per process and is otherwise ignored (logged with the
command name only). In a group the sender's user id decides, not the chat. A command asking for
confirmation gets "Yes" and "Cancel" buttons that work once, for the person who asked, for two
minutes. Commands run from new messages only: editing an old message into a command does nothing.

Every text is in the chat's language (/language, else BOT_LANGUAGE); the command menu is set once per
language (`language_code`), so a Korean client shows Korean descriptions. /status, /profit, /balance
and /daily carry a "Refresh" button that edits the message in place; /start in a private chat shows
a keyboard of the common commands.
"""
from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import timezone

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest
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
from core.i18n import LANGUAGES, _, default_language, language
from core.redaction import redact
from core.runtime.runtime import Runtime
from core.service.registry import Caller, Role, Source, commands_for, parse_command
from core.service.replies import Confirm, Welcome
from core.service.reports import ChartData, EquityData
from core.storage.users import chat_language

REFRESHABLE = ("status", "profit", "balance", "daily")  # replies that carry a Refresh button
KEYBOARD = (("/status", "/balance", "/profit"), ("/positions", "/signals", "/daily"), ("/trades", "/help"))
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts

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
                      chat_type=chat.type if chat else "private", language=self.language(update))

    def language(self, update: object) -> str | None:
        """The language the update's chat chose, or None (BOT_LANGUAGE)."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            return None
        try:
            return chat_language(self.runtime.db, chat.id)
        except Exception:  # the database is down: the default language still answers
            log.warning("could not read the language of chat %s", chat.id)
            return None


def _rt(context: ContextTypes.DEFAULT_TYPE) -> BotRuntime:
    return context.application.bot_data["runtime"]


async def reply(update: Update, text: str, reply_markup=None) -> None:
    """The text in pieces under Telegram's limit; the buttons go under the last one."""
    pieces = split_text(html.escape(redact(text)))
    for i, piece in enumerate(pieces):
        await update.effective_message.reply_text(piece, parse_mode="HTML",
                                                  reply_markup=reply_markup if i == len(pieces) - 1 else None)


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every handler: unknown users are refused once and stopped here; a button press
    is always answered, so no client is left spinning."""
    user = update.effective_user
    rt = _rt(context)
    message = update.effective_message
    on_behalf = message is not None and message.sender_chat is not None  # an anonymous admin, a channel
    if user is not None and user.id in rt.roles and not on_behalf:
        return
    with language(rt.language(update)):
        await _refuse(update, rt, user, message, on_behalf)
    raise ApplicationHandlerStop


async def _refuse(update: Update, rt: BotRuntime, user, message, on_behalf: bool) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(_("This bot is private."))
    if user is None or on_behalf:  # a channel post, an anonymous group admin: nobody to authorise
        chat = update.effective_chat
        parsed = parse_command(message.text or "") if message is not None else None
        if parsed and chat is not None and chat.type != "channel" and chat.id not in rt.refused:
            rt.refused.add(chat.id)  # told once per chat
            await message.reply_text(_("Commands sent anonymously or on behalf of a chat cannot be authorised; "
                                       "send them as yourself."))
        log.warning("ignored %s sent on behalf of chat %s", f"/{parsed[0]}" if parsed else "a message",
                    chat.id if chat else None)
        return
    parsed = parse_command(message.text or "") if message is not None else None
    what = f"/{parsed[0]}" if parsed else ("a button" if update.callback_query else "a message")
    log.warning("ignored %s from unauthorised user %s", what, user.id)
    if user.id not in rt.refused and message is not None and update.callback_query is None:
        rt.refused.add(user.id)
        await message.reply_text(_("This bot is private."))


def confirm_label(line: str) -> str:
    name = (parse_command(line) or ("",))[0]
    return {"buy": _("Yes, buy"), "sell": _("Yes, sell"), "sellall": _("Yes, sell all")}.get(name, _("Yes"))


def refresh_button(line: str) -> InlineKeyboardMarkup | None:
    """A Refresh button under the replies that change by the minute; None where the command line would
    not fit in Telegram's callback data."""
    parsed = parse_command(line)
    data = "refresh:" + " ".join(["/" + parsed[0], *parsed[1]]) if parsed else ""
    if not parsed or parsed[0] not in REFRESHABLE or len(data.encode()) > CALLBACK_LIMIT:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton("🔄 " + _("Refresh"), callback_data=data)]])


def common_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(c) for c in row] for row in KEYBOARD], resize_keyboard=True,
                               is_persistent=True)


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    caller = rt.caller(update)
    line = update.effective_message.text
    result = await rt.runtime.command(line, caller, confirmed=False)
    with language(caller.language):  # /language answers in the new language already (its Notice)
        await _answer(update, line, result, caller)


async def _answer(update: Update, line: str, result, caller: Caller) -> None:
    message = update.effective_message
    if isinstance(result, Confirm):
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(confirm_label(line), callback_data=f"yes:{result.key}"),
                                          InlineKeyboardButton(_("Cancel"), callback_data=f"no:{result.key}")]])
        await message.reply_text(redact(result.question), reply_markup=keyboard)
        return
    if isinstance(result, (ChartData, EquityData)):
        from bot.charts import (  # matplotlib only when a picture is drawn
            chart_png,
            equity_png,
        )

        png = await asyncio.to_thread(chart_png if isinstance(result, ChartData) else equity_png, result)
        await message.reply_photo(png, caption=render(result)[:1024])
        return
    if isinstance(result, Welcome) and caller.chat_type == "private":
        await reply(update, render(result), reply_markup=common_keyboard())
        return
    await reply(update, render(result), reply_markup=refresh_button(line))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = _rt(context)
    caller = rt.caller(update)
    with language(caller.language):
        await _pressed(update, rt, caller)


async def _pressed(update: Update, rt: BotRuntime, caller: Caller) -> None:
    query = update.callback_query
    answer, _sep, key = (query.data or "").partition(":")
    if answer not in ("yes", "no", "refresh") or not key:
        await query.answer(_("Unknown button."))
        return
    if answer == "refresh":
        await _refresh(query, rt, caller, key)
        return
    await query.answer()
    if answer == "no":
        done = rt.runtime.service.cancel(key)
        await query.edit_message_text(_("Cancelled: nothing done.") if done else _("This question had expired already."))
        return
    result = await rt.runtime.confirm(key, caller)
    await query.edit_message_text(html.escape(redact(render(result)))[:4096], parse_mode="HTML")


async def _refresh(query, rt: BotRuntime, caller: Caller, line: str) -> None:
    """Run the reply's command again and put the new text in the same message; an unchanged reply is
    said in the button's answer (Telegram refuses an edit that changes nothing)."""
    parsed = parse_command(line)
    if not parsed or parsed[0] not in REFRESHABLE:
        await query.answer(_("Unknown button."))
        return
    result = await rt.runtime.command(line, caller)
    text = html.escape(redact(render(result)))[:4096]
    try:
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=refresh_button(line))
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
        await query.answer(_("Nothing has changed."))
        return
    await query.answer(_("Refreshed."))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Whatever a handler raised: logged (redacted, with its traceback), the sender gets a short
    apology, and the bot goes on."""
    log.error("a Telegram update could not be handled: %s", context.error, exc_info=context.error)
    if isinstance(update, Update):
        try:
            with language(_rt(context).language(update)):
                if update.callback_query is not None:
                    await update.callback_query.answer(_("Sorry, that failed; the bot keeps running."))
                elif update.effective_message is not None:
                    await update.effective_message.reply_text(_("Sorry, that failed unexpectedly; the bot keeps "
                                                                "running and the log has the details."))
        except Exception:  # Telegram itself may be what failed
            log.warning("could not tell the sender that their update failed")


def menu() -> list[BotCommand]:
    """The command menu in the current language."""
    return [BotCommand(c.name, c.shown_summary[:256]) for c in commands_for(Source.TELEGRAM)]


async def set_menus(bot) -> None:
    """One menu per language (clients pick theirs by their own language) and the default one in
    BOT_LANGUAGE for every other client."""
    for code in LANGUAGES:
        with language(code):
            await bot.set_my_commands(menu(), language_code=code)
    with language(default_language()):
        await bot.set_my_commands(menu())


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
