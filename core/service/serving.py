"""Which model does the running agent serve, and when does it change? ModelServing: the registry's
serving version in the agent's feed, retraining started on schedule or by /retrain, its outcome
settled, and switches (promotion, /promote, /rollback, `autotrader models promote` from another
process) applied. Every method runs under the runtime's lock, so a switch lands between two cycles,
never inside one.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from core.service import model_versions
from core.service.model_versions import VersionError, model_metadata
from core.service.retraining import AlreadyTraining, Retrainer, RetrainUnavailable
from core.storage import model_registry as registry
from core.storage.model_registry import ModelVersion
from models.manager import MultiCoinModelManager

log = logging.getLogger(__name__)

__all__ = ["ModelServing", "RegistryView", "VersionLine", "AlreadyTraining", "RetrainUnavailable", "VersionError"]


@dataclass(frozen=True)
class VersionLine:
    version: int
    model_id: str
    status: str
    created_at: datetime
    data_first: datetime | None
    data_last: datetime | None
    reason: str
    promoted_at: datetime | None = None
    promoted_by: str | None = None
    recent: dict | None = None  # the recent period's figures (challenger and serving) where judged
    parameters: dict | None = None  # label, decision defaults, training configuration, split plan


@dataclass(frozen=True)
class RegistryView:
    serving: VersionLine | None
    others: tuple[VersionLine, ...]  # the latest challengers, rejected, retired and failed, newest first
    training_since: datetime | None
    retrain_note: str | None  # why retraining cannot run here (no training extra), else None


def line(v: ModelVersion) -> VersionLine:
    return VersionLine(v.version, v.model_id, v.status, v.created_at, v.data_first, v.data_last, v.reason,
                       v.promoted_at, v.promoted_by, v.recent or None, v.parameters or None)


class ModelServing:
    def __init__(self, agent, version: ModelVersion, path: Path, retrainer: Retrainer | None):
        self.agent = agent
        self.db = agent.db
        self.version = version
        self.path = Path(path)
        self.retrainer = retrainer
        self._said = False  # whether a scheduled retraining was skipped for too short a history yet

    # -- what /model shows ----------------------------------------------------------------------
    def view(self, others: int = 5) -> RegistryView:
        rows = [v for v in registry.versions(self.db, limit=others + 1) if v.version != self.version.version]
        running = self.retrainer.running if self.retrainer is not None else None
        from core.service.retraining import training_extra_missing

        return RegistryView(line(self.version), tuple(line(v) for v in rows[:others]),
                            running.started_at if running else None,
                            training_extra_missing() if self.retrainer is not None else None)

    # -- retraining -----------------------------------------------------------------------------
    def retrain(self, now: datetime, by: str) -> datetime:
        """Start a retraining now; AlreadyTraining while one runs, RetrainUnavailable without the extra."""
        if self.retrainer is None:
            raise RetrainUnavailable("retraining is not available in this mode")
        meta = model_metadata(self.path)
        label = meta.get("decision_label") or meta.get("label") or {}
        risk = {k: v for k, v in asdict(self.agent.risk).items() if k != "paused"}
        return self.retrainer.start(now, by, self.path, self.agent.markets, risk, self.agent.model_defaults, label)

    def scheduled(self, now: datetime) -> None:
        """RETRAIN_AT fired: start one unless the last is too recent, one is running, or it cannot run."""
        if self.retrainer is None or not self.retrainer.due(now):
            return
        short = self.retrainer.too_short(now, self.agent.markets)
        if short is not None:
            log.log(logging.DEBUG if self._said else logging.INFO, "scheduled retraining skipped: %s", short)
            self._said = True  # said once: a replay's short history says the same every day
            return
        try:
            self.retrain(now, "schedule")
        except (AlreadyTraining, RetrainUnavailable) as exc:
            log.warning("scheduled retraining not started: %s", exc)

    def watch(self, now: datetime) -> str | None:
        """A finished trainer's outcome settled (and a promotion served); a switch made elsewhere (the
        CLI, another command) served. Returns the outcome's event name, if any."""
        name = None
        if self.retrainer is not None:
            outcome = self.retrainer.finished()
            if outcome is not None:
                name, number, promoted = self.retrainer.settle(outcome, self.agent.markets, now)
                log.info("retraining: %s (version %s)", name, number)
        self.sync(now)
        return name

    def sync(self, now: datetime) -> None:
        current = registry.serving(self.db)
        if current is None or current.version == self.version.version or current.path is None:
            return
        self.use(current, now)

    def use(self, version: ModelVersion, now: datetime) -> None:
        manager = MultiCoinModelManager(version.path, self.agent.markets)
        report = manager.load_all_models()
        if report.failed:
            log.error("version %s cannot serve (%s); version %s keeps serving", version.version, report,
                      self.version.version)
            return
        self.agent.manager = manager
        self.agent.cycle.feed.use_manager(manager, now)
        log.info("model version %s (%s) serves from the next cycle (was version %s)", version.version,
                    version.model_id, self.version.version)
        self.version, self.path = version, Path(version.path)

    # -- switching by hand ----------------------------------------------------------------------
    def promote(self, number: int, caller, command: str = "promote") -> ModelVersion:
        now = self.agent.clock()
        version = model_versions.promote(self.db, number, self.agent.markets, now, str(caller), caller.source,
                                         caller.user_id, command, f"/{command} by {caller}")
        self.use(version, now)
        return version

    def rollback(self, caller) -> ModelVersion:
        return self.promote(model_versions.rollback_target(self.db).version, caller, "rollback")

    def stop(self) -> None:
        if self.retrainer is not None:
            self.retrainer.stop()
