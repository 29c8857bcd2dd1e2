"""How do model versions read? The registry part of /model and the retraining alerts, in the current
language, from the stored data (the registry's English `reason` is for the CLI and the audit log)."""
from __future__ import annotations

from core.display import day, percent, when
from core.i18n import N_, _

STATUSES = {"serving": N_("serving"), "challenger": N_("challenger"), "rejected": N_("rejected"),
            "retired": N_("retired"), "failed": N_("failed")}


def status(name: str) -> str:
    return _(STATUSES[name]) if name in STATUSES else name


def figures(f: dict | None) -> str:
    """A model's trading on the recent period: return, Sharpe, trades, and its score."""
    if not f:
        return "-"
    sharpe = "-" if f.get("sharpe") is None else f"{f['sharpe']:.2f}"
    return _("return {ret}, Sharpe {sharpe}, {trades} trades, score {score:.2f}").format(
        ret=percent(f.get("total_return") or 0.0), sharpe=sharpe, trades=f.get("trades", 0),
        score=f.get("score") or 0.0)


def comparison(recent: dict | None) -> str | None:
    """The challenger beside the model serving when it was judged, on the recent period."""
    if not recent or "challenger" not in recent:
        return None
    start, end = (day_of(x) for x in recent.get("period", ("?", "?")))
    text = _("on {start} .. {end}: {challenger}; the serving model then: {serving}").format(
        start=start, end=end, challenger=figures(recent["challenger"]), serving=figures(recent.get("serving")))
    if recent.get("serving_in_sample") or recent.get("in_sample"):
        text += _(" (the serving model had learnt from that period, which flatters it)")
    return text


def day_of(text: str) -> str:
    return str(text)[:10]


def why(line) -> str:
    """Why a version has its status, in words."""
    if line.status == "failed":
        return _("training failed: {error}").format(error=line.reason)
    if line.promoted_by == "start" and line.status in ("serving", "retired") and not comparison(line.recent):
        return _("registered at start")
    judged = comparison(line.recent)
    if line.status == "serving" and line.promoted_by not in (None, "schedule", "start"):
        return _("promoted by {by}").format(by=line.promoted_by) + (f"; {judged}" if judged else "")
    return judged or "-"


def version_lines(view) -> list[str]:
    """The registry part of /model."""
    lines = []
    s = view.serving
    if s is not None:
        span = f"{day(s.data_first)} .. {day(s.data_last)}" if s.data_first and s.data_last else "-"
        lines.append(_("Serving: version {version} ({model}), data {span}, serving since {since}; {why}").format(
            version=s.version, model=s.model_id, span=span, since=when(s.promoted_at), why=why(s)))
        chosen = parameters_line(s.parameters)
        if chosen:
            lines.append(chosen)
    if view.training_since is not None:
        lines.append(_("Training a challenger since {time}.").format(time=when(view.training_since)))
    if view.retrain_note:
        lines.append(_("Retraining cannot run here: {why}").format(why=view.retrain_note))
    if view.others:
        lines.append(_("Latest versions:"))
        for v in view.others:
            lines.append(_("version {version} ({status}, {created}): {why}").format(
                version=v.version, status=status(v.status), created=when(v.created_at), why=why(v)))
    return lines


def parameters_line(p: dict | None) -> str | None:
    """What the serving version was trained and set up with: its label and its decision defaults."""
    if not p:
        return None
    label = p.get("label") or {}
    defaults = p.get("decision_defaults") or {}
    if not label and not defaults:
        return None
    text = _("Chosen parameters: label {horizon} candles ahead, threshold {threshold}").format(
        horizon=label.get("horizon", "?"), threshold=percent(label.get("threshold", 0.0), signed=False))
    if defaults:
        text += _("; decision defaults {defaults}").format(
            defaults=", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                               for k, v in sorted(defaults.items())))
    return text


def promoted(m, p) -> str:
    return _("Model version {version} promoted: it beat version {serving} on the recent period, {comparison}. "
             "It serves from the next cycle.").format(version=p["version"], serving=p["serving"],
                                                      comparison=_pair(p))


def rejected(m, p) -> str:
    return _("Challenger version {version} rejected: it did not beat version {serving} on the recent period, "
             "{comparison}. Version {serving} keeps serving.").format(version=p["version"], serving=p["serving"],
                                                                      comparison=_pair(p))


def _pair(p: dict) -> str:
    text = _("{start} .. {end}: challenger {challenger}; serving {serving}").format(
        start=day_of(p["period"][0]), end=day_of(p["period"][1]), challenger=figures(p["challenger"]),
        serving=figures(p["current"]))
    if p.get("in_sample"):
        text += _(" (the serving model had learnt from that period, which flatters it)")
    return text
