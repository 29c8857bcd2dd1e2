"""Which model serves, and how does that change? The registry's rules, for the bot, its commands and
the `autotrader models` CLI alike.

- At start the registry's serving version serves. An empty registry registers the model directory
  the bot was started with (MODEL_DIR, the shipped models by default) as version 1; a MODEL_DIR that
  is not registered yet is registered and serves (the operator chose it).
- A version is promoted only if its artifacts load and predict a probe window (models.manager.probe);
  the version serving before is retired, every change is audited and announced.
- A rollback promotes the version that served before the one serving now.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

from sqlalchemy.engine import Engine

from core.i18n import _
from core.storage import model_registry as registry
from core.storage.model_registry import ModelVersion
from core.storage.outbox import enqueue
from core.storage.settings_store import audit
from core.trading.events import EventKind, event
from models.hybrid import METADATA_FILE
from models.manager import GLOBAL_MODEL, probe


class VersionError(ValueError):
    """A version that does not exist or cannot serve; the message says which and why."""


@dataclass(frozen=True)
class Serving:
    version: ModelVersion
    path: Path
    note: str | None = None  # said at start when the registry's choice could not serve


def model_metadata(path: Path) -> dict:
    try:
        return json.loads((Path(path) / GLOBAL_MODEL / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _span(meta: dict) -> tuple[datetime | None, datetime | None]:
    sources = meta.get("sources") or {}
    try:
        return (datetime.fromisoformat(min(s["first"] for s in sources.values())),
                datetime.fromisoformat(max(s["last"] for s in sources.values())))
    except (ValueError, KeyError, TypeError):
        return None, None


def register_directory(engine: Engine, path: Path, now: datetime, reason: str) -> ModelVersion:
    """A model directory made elsewhere (the shipped models, `autotrader train`), registered as serving."""
    meta = model_metadata(path)
    first, last = _span(meta)
    with engine.begin() as conn:
        number = registry.add(conn, model_id=str(meta.get("model_id", Path(path).name)), created_at=now,
                              status=registry.SERVING, path=str(Path(path).resolve()),
                              markets=meta.get("markets") or [], data_first=first, data_last=last,
                              parameters={"label": meta.get("label"), "splits": meta.get("splits"),
                                          "training_config": meta.get("training_config"),
                                          "decision_defaults": meta.get("decision_defaults")},
                              validation=meta.get("validation_metrics") or {},
                              recent={"walkforward": (meta.get("walkforward") or {}).get("overall")},
                              reason=reason, promoted_by="start")
    return registry.get(engine, number)


def serving_at_start(engine: Engine, model_dir: Path, markets: Sequence[str], now: datetime) -> Serving:
    """The version to serve now (registering `model_dir` when the registry does not know it)."""
    model_dir = Path(model_dir).resolve()
    current = registry.serving(engine)
    if registry.by_path(engine, str(model_dir)) is None:
        reason = "the model the bot first served" if current is None else "MODEL_DIR at start (not registered before)"
        return Serving(register_directory(engine, model_dir, now, reason), model_dir)
    if current is None or current.path is None:
        return Serving(register_directory(engine, model_dir, now, "MODEL_DIR at start (nothing was serving)"), model_dir)
    problem = probe(current.path, markets)
    if problem is None:
        return Serving(current, Path(current.path))
    fallback = registry.by_path(engine, str(model_dir))
    return Serving(fallback, model_dir, note=f"version {current.version} cannot serve ({problem}); serving "
                                             f"{model_dir} (version {fallback.version}) until it is fixed")


def promote(engine: Engine, number: int, markets: Sequence[str], now: datetime, by: str, source: str,
            user_id: int | None, command: str, reason: str) -> ModelVersion:
    """Make `number` serve (checked first), audited and announced; VersionError saying why not."""
    version = registry.get(engine, number)
    if version is None:
        raise VersionError(_("there is no model version {version}").format(version=number))
    if version.status == registry.SERVING:
        raise VersionError(_("version {version} is already serving").format(version=number))
    if version.path is None:
        raise VersionError(_("version {version} has no artifacts (its training failed)").format(version=number))
    problem = probe(version.path, markets)
    if problem is not None:
        raise VersionError(_("version {version} cannot serve: {problem}").format(version=number, problem=problem))
    before = registry.serving(engine)
    with engine.begin() as conn:
        registry.promote(conn, number, now, by, reason)
        audit(conn, now, user_id, source, command, f"version {number} serving (was "
              f"{before.version if before else 'none'}): {reason}", True)
        enqueue(conn, event(EventKind.SYSTEM, "model_switched", now, version=number, model_id=version.model_id,
                            previous=before.version if before else None, by=by, action=command))
    return registry.get(engine, number)


def rollback_target(engine: Engine) -> ModelVersion:
    target = registry.previous_serving(engine)
    if target is None:
        raise VersionError(_("no earlier version to roll back to"))
    return target
