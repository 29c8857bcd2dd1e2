"""The commands that change the serving model: /retrain, /promote <version>, /rollback (admins).

They act through the runtime's ModelServing (core.service.serving), set as `service.models`; a
switch is checked (the artifacts load and predict) before the registry changes, audited and
announced; the agent serves the new version from the next cycle.
"""
from __future__ import annotations

from core.display import when
from core.i18n import N_, _
from core.service.registry import Arg, Role, UsageError, command
from core.service.replies import Notice
from core.service.serving import AlreadyTraining, RetrainUnavailable, VersionError
from core.storage import model_registry as registry
from core.storage.settings_store import audit


def version_number(text: str) -> int:
    cleaned = text.lower().removeprefix("v")
    if not cleaned.isdigit() or len(cleaned) > 9 or int(cleaned) < 1:
        raise UsageError(_("expected a version number such as 3 (/model lists them), got {text!r}").format(
            text=text[:64]))
    return int(cleaned)


def _serving(ctx):
    models = getattr(ctx.service, "models", None)
    if models is None:
        raise ValueError(_("model versions are not available in this mode"))
    return models


@command("retrain", "/retrain", N_("train a challenger now; it serves only if it beats the serving model"),
         role=Role.ADMIN)
def retrain(ctx):
    models = _serving(ctx)
    try:
        started = models.retrain(ctx.agent.clock(), str(ctx.caller))
    except AlreadyTraining as exc:
        ctx.agent.refuse(ctx.caller, "retrain", f"refused: {exc}")
        raise ValueError(_("already training since {time}").format(time=when(exc.since))) from None
    except RetrainUnavailable as exc:
        raise ValueError(_("retraining cannot run here: {why}").format(why=exc)) from None
    with ctx.agent.db.begin() as conn:
        audit(conn, started, ctx.caller.user_id, ctx.caller.source, "retrain", "started", True)
    return Notice(_("Retraining started at {time}: a challenger is trained on the candles so far and judged on "
                    "the recent period; you will hear the outcome.").format(time=when(started)))


def _promoting(ctx, number: int) -> str:
    version = registry.get(ctx.agent.db, number)
    if version is None:
        raise ValueError(_("there is no model version {version}").format(version=number))
    if version.status == registry.SERVING:
        raise ValueError(_("version {version} is already serving").format(version=number))
    return _("Serve model version {version} ({model}) from the next cycle, instead of version {current}?").format(
        version=number, model=version.model_id, current=_serving(ctx).version.version)


@command("promote", N_("/promote <version>"), N_("serve another model version from the next cycle, e.g. /promote 3"),
         role=Role.ADMIN, args=(Arg("version", version_number),), confirm=_promoting)
def promote(ctx, number: int):
    models = _serving(ctx)
    try:
        version = models.promote(number, ctx.caller, "promote")
    except VersionError as exc:
        ctx.agent.refuse(ctx.caller, "promote", f"refused: {exc}")
        raise ValueError(str(exc)) from None
    return Notice(_("Model version {version} ({model}) serves from the next cycle.").format(
        version=version.version, model=version.model_id))


def _rolling_back(ctx) -> str:
    from core.service.model_versions import rollback_target

    models = _serving(ctx)
    try:
        target = rollback_target(ctx.agent.db)
    except VersionError as exc:
        raise ValueError(str(exc)) from None
    return _("Go back to model version {version} ({model}), which served before version {current}?").format(
        version=target.version, model=target.model_id, current=models.version.version)


@command("rollback", "/rollback", N_("serve the model version that served before this one"), role=Role.ADMIN,
         confirm=_rolling_back)
def rollback(ctx):
    models = _serving(ctx)
    try:
        version = models.rollback(ctx.caller)
    except VersionError as exc:
        ctx.agent.refuse(ctx.caller, "rollback", f"refused: {exc}")
        raise ValueError(str(exc)) from None
    return Notice(_("Rolled back: model version {version} ({model}) serves from the next cycle.").format(
        version=version.version, model=version.model_id))
