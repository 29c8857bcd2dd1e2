"""Who hears what? Registered chats, their roles, their alert preferences and their language."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from core.storage.database import to_db_time
from core.i18n import _, check_language
from core.storage.schema import chat_languages, users
from core.trading.events import ADMIN_ONLY_KINDS, KINDS

PREFERENCES = ("on", "off", "silent")


@dataclass(frozen=True)
class Subscriber:
    user_id: int
    chat_id: int
    role: str
    alerts: dict  # kind -> on | off | silent; a kind not listed is on
    language: str | None = None  # chosen with /language; None: BOT_LANGUAGE

    def preference(self, kind: str) -> str:
        if kind in ADMIN_ONLY_KINDS and self.role != "admin":
            return "off"
        return self.alerts.get(kind, "on")


def register(engine: Engine, user_id: int, chat_id: int, role: str, at: datetime) -> Subscriber:
    """Create or refresh a user's row (the chat to write to, the role the settings give); keeps preferences."""
    with engine.begin() as conn:
        row = conn.execute(select(users).where(users.c.user_id == user_id)).first()
        if row is None:
            conn.execute(users.insert().values(user_id=user_id, chat_id=chat_id, role=role, alerts={},
                                               created_at=to_db_time(at)))
            return Subscriber(user_id, chat_id, role, {})
        conn.execute(update(users).where(users.c.user_id == user_id).values(chat_id=chat_id, role=role))
        return Subscriber(user_id, chat_id, role, dict(row.alerts or {}))


def set_preference(engine: Engine, user_id: int, kind: str, preference: str) -> None:
    if kind not in KINDS:
        raise ValueError(_("unknown alert kind {text!r}; one of: {kinds}, or group").format(text=kind, kinds=", ".join(KINDS)))
    if preference not in PREFERENCES:
        raise ValueError(_("expected {options}, got {text!r}").format(options=" | ".join(PREFERENCES), text=preference))
    with engine.begin() as conn:
        row = conn.execute(select(users.c.alerts).where(users.c.user_id == user_id)).first()
        if row is None:
            raise ValueError(_("send /start first to receive alerts"))
        conn.execute(update(users).where(users.c.user_id == user_id).values(alerts={**(row.alerts or {}), kind: preference}))


def subscribers(engine: Engine, allowed: dict[int, str]) -> list[Subscriber]:
    """Registered users whose id the settings still allow, with their current role."""
    with engine.connect() as conn:
        rows = conn.execute(select(users, chat_languages.c.language)
                            .join(chat_languages, chat_languages.c.chat_id == users.c.chat_id, isouter=True)
                            .order_by(users.c.user_id)).all()
    return [Subscriber(r.user_id, r.chat_id, allowed[r.user_id], dict(r.alerts or {}), r.language)
            for r in rows if r.user_id in allowed]


def chat_language(engine: Engine, chat_id: int | None) -> str | None:
    """The language a chat chose, or None (the default applies)."""
    if chat_id is None:
        return None
    with engine.connect() as conn:
        return conn.execute(select(chat_languages.c.language).where(chat_languages.c.chat_id == chat_id)).scalar()


def set_chat_language(engine: Engine, chat_id: int, code: str, at: datetime) -> str:
    """Remember `code` for the chat (ValueError for a language we have no catalog for)."""
    code = check_language(code)
    with engine.begin() as conn:
        done = conn.execute(update(chat_languages).where(chat_languages.c.chat_id == chat_id)
                            .values(language=code, updated_at=to_db_time(at))).rowcount
        if not done:
            conn.execute(chat_languages.insert().values(chat_id=chat_id, language=code, updated_at=to_db_time(at)))
    return code


def forget(engine: Engine, user_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(delete(users).where(users.c.user_id == user_id))
