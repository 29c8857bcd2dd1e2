"""What can users ask and order? The one command service behind the console chat and Telegram.

`CommandService.handle(text, caller)` parses a command line against the declarations of
core.service.registry, checks who may use it, parses its arguments, asks for confirmation where the
declaration says so, runs its handler and returns plain data (core.service.replies). A malformed
command or argument is a Problem naming the right form; a refused command is audited; a domain error
is a one-line Problem; an unexpected failure is logged with its traceback and answered with an
apology, and the agent runs on.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from core.i18n import _, language
from core.service import (  # noqa: F401 - importing them declares their commands
    control,
    history,
    logbook,
    model_commands,
    queries,
)
from core.service.agent import Agent
from core.service.registry import (
    REGISTRY,
    Caller,
    Confirmations,
    Unconfirmable,
    UsageError,
    parse_command,
)
from core.service.replies import Confirm, Problem
from core.trading.health import ServiceHealth

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a handler gets besides its arguments: the agent, who asks, and the service itself (for
    the health of the services the agent depends on, and its start time)."""

    agent: Agent
    caller: Caller
    service: "CommandService"


class CommandService:
    def __init__(self, agent: Agent, health: Callable[[], tuple[ServiceHealth, ...]] = tuple,
                 clock: Callable[[], float] = time.time):
        self.agent = agent
        self.health = health  # the runtime's view of market data and Telegram
        self.started_at = datetime.now(timezone.utc)
        self.confirmations = Confirmations()
        self.models = None  # core.service.serving.ModelServing: the registry's versions (None in a backtest)
        self._clock = clock

    def handle(self, text: str, caller: Caller, confirmed: bool = True):
        """`confirmed=False` (Telegram) makes a command that asks first answer with a Confirm, once its
        arguments have been checked; the console runs it at once. Its words are in the caller's
        language; the front-end renders the reply in the same (`with language(caller.language)`)."""
        with language(caller.language):
            return self._handle(text, caller, confirmed)

    def _handle(self, text: str, caller: Caller, confirmed: bool):
        parsed = parse_command(text)
        if parsed is None:
            return Problem(_("commands start with /, e.g. /status; /help lists them"))
        name, words = parsed
        spec = REGISTRY.get(name)
        if spec is None or caller.source not in spec.sources:
            return Problem(_("unknown command /{name}; /help lists them").format(name=name[:64]))
        if spec.role == "admin" and not caller.is_admin:
            self.agent.refuse(caller, name, "refused: not an admin")
            return Problem(_("/{name} is for admins only").format(name=name))
        ctx = Context(self.agent, caller, self)
        try:
            args = spec.parse_args(words)
            if spec.confirm is not None and not confirmed:
                question = spec.confirm(ctx, *args)
                if question is not None:
                    line = " ".join([f"/{name}", *words])
                    return Confirm(question, line, self.confirmations.ask(line, caller.user_id, self._clock()))
            return spec.handler(ctx, *args)
        except UsageError as exc:
            return Problem(_("{error}; usage: {usage}").format(error=exc, usage=spec.shown_usage))
        except ValueError as exc:  # a domain refusal: no price yet, not watching that market, ...
            return Problem(str(exc))
        except Exception:
            log.exception("/%s from %s failed", name, caller)
            return Problem(_("sorry, /{name} failed unexpectedly; the agent keeps running and the log has the "
                             "details").format(name=name))

    def confirm(self, key: str, caller: Caller):
        """The answer 'yes' to a question asked by `handle(..., confirmed=False)`: runs its command once,
        for the person who asked, while it has not expired (two minutes)."""
        with language(caller.language):
            try:
                line = self.confirmations.take(key, caller.user_id, self._clock())
            except Unconfirmable as exc:
                self.agent.refuse(caller, "confirm", f"refused: {exc.english}")  # the audit log stays English
                return Problem(str(exc))
            return self._handle(line, caller, confirmed=True)

    def cancel(self, key: str) -> bool:
        """The answer 'no': the question is dropped; False if it had expired or been answered."""
        return self.confirmations.drop(key)
