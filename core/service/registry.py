"""How is a command declared? Once: name, usage, summary, who may use it, its arguments, whether it
asks for confirmation, where it exists. Help, the Telegram menu, the console and the confirmation
flow are all generated from these declarations (REGISTRY).

A handler is a plain function `handler(ctx, *arguments)` returning a reply (core.service.replies);
the declaration is the `@command(...)` decorator above it, and its view is one function in
bot/views.py. That is all a new command needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable, Sequence

from core.i18n import N_, _, ngettext


class UsageError(ValueError):
    """Bad arguments or input: the reply (or the CLI's one line on stderr) says what and the right form."""


class Unconfirmable(UsageError):
    """A confirmation that cannot be taken; `english` is its text for the audit log."""

    def __init__(self, message: str):
        super().__init__(_(message))
        self.english = message


EXPIRED = N_("this question has expired or was answered already; send the command again")
NOT_YOURS = N_("only the person who sent the command can confirm it")


class Role(StrEnum):
    VIEWER = "viewer"  # may read and receive alerts
    ADMIN = "admin"  # may also control: pause, thresholds, sales


class Source(StrEnum):
    CONSOLE = "console"
    TELEGRAM = "telegram"


EVERYWHERE = frozenset(Source)


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who sent a command, from where; in a Telegram group the sender's id decides, not the chat's."""

    user_id: int | None
    source: Source
    role: Role
    chat_id: int | None = None
    chat_type: str = "private"  # private | group | supergroup | channel
    language: str | None = None  # the chat's language (/language); None: BOT_LANGUAGE

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def chat_key(self) -> int:
        """The chat whose language and settings this is: the console is chat 0."""
        return self.chat_id if self.chat_id is not None else (self.user_id if self.user_id is not None else CONSOLE_CHAT)

    def __str__(self) -> str:
        return str(self.source) if self.user_id is None else f"{self.source} user {self.user_id}"


CONSOLE_CHAT = 0


CONSOLE = Caller(user_id=None, source=Source.CONSOLE, role=Role.ADMIN)


@dataclass(frozen=True)
class Arg:
    """One argument: its name in the usage line, how its text is parsed (raise UsageError or
    ValueError to refuse it), and whether it may be left out."""

    name: str
    parse: Callable[[str], object] = str
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    usage: str  # N_-marked: shown with _() (the words around the syntax are translated)
    summary: str  # N_-marked
    handler: Callable
    role: Role = Role.VIEWER
    args: tuple[Arg, ...] = ()
    confirm: Callable | None = None  # (ctx, *args) -> the question to ask first, or None: nothing to confirm
    sources: frozenset[Source] = EVERYWHERE
    hint: str | None = None  # N_-marked; said when the number of arguments is wrong (default: their names)

    def parse_args(self, words: Sequence[str]) -> list:
        required = sum(not a.optional for a in self.args)
        if not required <= len(words) <= len(self.args):
            if not self.args:
                raise UsageError(_("takes no arguments"))
            if self.hint:
                raise UsageError(_(self.hint))
            names = " ".join(f"<{a.name}>" if not a.optional else f"[{a.name}]" for a in self.args)
            raise UsageError(ngettext("expected {names}, got {n} argument", "expected {names}, got {n} arguments",
                                      len(words)).format(names=names, n=len(words)))
        return [arg.parse(word) for arg, word in zip(self.args, words)]

    @property
    def shown_usage(self) -> str:
        return _(self.usage)

    @property
    def shown_summary(self) -> str:
        return _(self.summary)


REGISTRY: dict[str, Command] = {}


def command(name: str, usage: str, summary: str, *, role: Role = Role.VIEWER, args: Sequence[Arg] = (),
            confirm: Callable | None = None, sources: frozenset[Source] = EVERYWHERE, hint: str | None = None):
    """Declare the function below as the handler of /name."""
    def declare(handler: Callable) -> Callable:
        if name in REGISTRY:
            raise ValueError(f"/{name} is declared twice")
        REGISTRY[name] = Command(name=name, usage=usage, summary=summary, handler=handler, role=role,
                                 args=tuple(args), confirm=confirm, sources=sources, hint=hint)
        return handler
    return declare


def commands_for(source: Source, role: Role | None = None) -> tuple[Command, ...]:
    """The commands available from `source`, to `role` if given, in declaration order."""
    return tuple(c for c in REGISTRY.values() if source in c.sources
                 and (role is None or role == Role.ADMIN or c.role == Role.VIEWER))


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """'/threshold@my_bot buy 0.6' -> ('threshold', ['buy', '0.6']); None if it is not a command."""
    parts = (text or "").strip().split()
    if not parts or not parts[0].startswith("/") or len(parts[0]) < 2:
        return None
    return parts[0][1:].split("@", 1)[0].lower(), parts[1:]


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in options:
            raise UsageError(_("expected {options}, got {text!r}").format(options=" | ".join(options), text=text))
        return text.lower()
    return parse


@dataclass
class Confirmations:
    """Questions asked and not yet answered: each has an id, the command it confirms, who may answer
    and until when. A pressed, expired or unknown id does nothing."""

    seconds: float = 120.0
    _pending: dict[str, tuple[str, int | None, float]] = field(default_factory=dict)
    _counter: int = 0

    def ask(self, command_line: str, user_id: int | None, now: float) -> str:
        self._counter += 1
        key = f"{int(now * 1000) % 10**9:x}{self._counter:x}"
        self._pending = {k: v for k, v in self._pending.items() if v[2] > now}  # forget the expired
        self._pending[key] = (command_line, user_id, now + self.seconds)
        return key

    def take(self, key: str, user_id: int | None, now: float) -> str:
        """The command line a confirmation stands for, once, for the person who was asked; Unconfirmable
        (saying why) if it is unknown, used, expired or someone else's."""
        found = self._pending.get(key)
        if found is None or found[2] <= now:
            self._pending.pop(key, None)
            raise Unconfirmable(EXPIRED)
        line, asker, _expires = found
        if asker is not None and user_id != asker:
            raise Unconfirmable(NOT_YOURS)
        del self._pending[key]
        return line

    def drop(self, key: str) -> bool:
        return self._pending.pop(key, None) is not None
