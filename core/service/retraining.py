"""Learning while it runs: one trainer process at a time, and what becomes of its result.

`Retrainer.start` writes the job (core.research.challenger.ChallengerSpec plus the data upkeep) into
a staging directory of the model store and starts `python -m core.service.trainer` there, niced,
killed with the bot. Nothing waits for it: the runtime polls `finished()` between jobs and hands the
outcome to `settle`, under its lock, at a cycle boundary. `settle` checks the artifacts (load and a
probe prediction) before the registry says they exist, moves them to `<store>/v<N>`, and promotes
the challenger only when the trainer judged it better on the recent period; a trainer that dies,
overruns its budget or leaves a broken artifact leaves the serving model serving, with an error alert.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

import pandas as pd
from sqlalchemy.engine import Engine

from core.data.candles import load_candle_csv, resolve_candle_file

from core.storage import model_registry as registry
from core.storage.outbox import enqueue
from core.storage.settings_store import audit
from core.trading.events import EventKind, event
from models.manager import probe

log = logging.getLogger(__name__)

JOB_FILE, RESULT_FILE, LOG_FILE = "job.json", "result.json", "trainer.log"
MIN_LSTM_MONTHS = 3  # the least history the LSTM is trained on, before the head's and validation's


@dataclass(frozen=True)
class RetrainConfig:
    store: Path  # one directory per version, and the trainer's staging directories
    data_dir: Path  # the candles trained on (kept up to date from `api_url` when it is set)
    api_url: str | None = None  # None: the data directory is used as it is (a replay's candles)
    history_days: int = 730  # how far back the data upkeep fetches a market it has no file for
    recent_days: int = 30
    validation_months: int = 3
    head_months: int = 6
    every_days: int = 1
    budget_seconds: float = 3600.0
    train: dict = field(default_factory=dict)  # TrainConfig overrides (RETRAIN_EPOCHS, RETRAIN_SAMPLES)
    interval: str = "1h"
    interval_seconds: int = 3600
    start_krw: float = 1_000_000


class AlreadyTraining(RuntimeError):
    def __init__(self, since: datetime):
        super().__init__(f"already training since {since.isoformat()}")
        self.since = since


class RetrainUnavailable(RuntimeError):
    """Retraining cannot run here (no training extra installed); the message says what to do."""


def training_extra_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("lightgbm") is None:
        return "retraining needs the training extra: pip install -e '.[train]' (torch 2.13.0, CPU)"
    return None


@dataclass
class Running:
    process: subprocess.Popen
    staging: Path
    started_at: datetime  # the bot's clock (simulated in a replay)
    started_wall: float
    by: str
    until: datetime


@dataclass(frozen=True)
class Outcome:
    """What one training produced: its report, or why it has none."""

    staging: Path
    started_at: datetime
    by: str
    result: dict | None
    error: str | None
    seconds: float


SECRETS = ("TELEGRAM_BOT_TOKEN", "UPBIT_ACCESS_KEY", "UPBIT_SECRET_KEY", "DATABASE_URL")


def trainer_environment() -> dict[str, str]:
    """The bot's environment without its secrets: the trainer reads public candles and files only."""
    return {k: v for k, v in os.environ.items() if k not in SECRETS} | {"PYTHONUNBUFFERED": "1"}


def _die_with_parent() -> None:  # the trainer never outlives the bot (Linux)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Retrainer:
    def __init__(self, engine: Engine, config: RetrainConfig, python: str = sys.executable):
        self.db = engine
        self.config = config
        self.python = python
        self.running: Running | None = None
        self.last: Outcome | None = None
        for leftover in config.store.glob("staging-*"):  # a bot that died mid-training left these
            shutil.rmtree(leftover, ignore_errors=True)

    # -- starting --------------------------------------------------------------------------------
    def due(self, now: datetime) -> bool:
        """The schedule fired: train unless the last attempt is less than `every_days` old."""
        if self.running is not None:
            return False
        last = next(iter(registry.versions(self.db, limit=1)), None)
        if last is None or last.status == registry.SERVING and last.promoted_by == "start":
            return True
        return now - last.created_at >= timedelta(days=self.config.every_days) - timedelta(hours=1)

    def too_short(self, now: datetime, markets: Sequence[str]) -> str | None:
        """Why local candles (a replay's: no data upkeep) are too short to train and judge a challenger
        by `now`; None when they are long enough, or when the upkeep downloads what is needed."""
        c = self.config
        if c.api_url is not None:
            return None
        needed = c.recent_days + 30.5 * (c.validation_months + c.head_months + MIN_LSTM_MONTHS)
        for market in markets:
            try:
                first = load_candle_csv(resolve_candle_file(c.data_dir, market, c.interval)).index[0]
            except (ValueError, OSError) as exc:
                return f"{market}: {exc}"
            span = (pd.Timestamp(now) - first).total_seconds() / 86400
            if span < needed:
                return (f"{market} has {span:.0f} days of candles by {now:%Y-%m-%d}; a challenger needs about "
                        f"{needed:.0f} (RETRAIN_RECENT_DAYS {c.recent_days} to judge it on, "
                        f"{c.validation_months + c.head_months + MIN_LSTM_MONTHS} months to train)")
        return None

    def start(self, now: datetime, by: str, serving_dir: Path, markets: Sequence[str], risk: dict,
              decision_defaults: dict, label: dict) -> datetime:
        """Start the trainer on the candles closed by `now`; its start time. AlreadyTraining while one
        runs; RetrainUnavailable without the training extra."""
        if self.running is not None:
            raise AlreadyTraining(self.running.started_at)
        missing = training_extra_missing()
        if missing:
            raise RetrainUnavailable(missing)
        from core.research.challenger import ChallengerSpec  # scikit-learn and the backtest: only when training

        c = self.config
        staging = c.store / f"staging-{now:%Y%m%dT%H%M%S}-{os.getpid()}"
        staging.mkdir(parents=True)  # the store itself is made by the first retraining
        spec = ChallengerSpec(data_dir=str(c.data_dir), markets=tuple(markets), until=now.isoformat(),
                              serving_dir=str(serving_dir), out_dir=str(staging / "model"), label=label,
                              decision_defaults=decision_defaults, risk=risk, recent_days=c.recent_days,
                              validation_months=c.validation_months, head_months=c.head_months, train=c.train,
                              interval=c.interval, interval_seconds=c.interval_seconds, start_krw=c.start_krw)
        upkeep = None if c.api_url is None else {
            "api_url": c.api_url, "since": (now - timedelta(days=c.history_days)).isoformat()}
        (staging / JOB_FILE).write_text(json.dumps({"challenger": asdict(spec), "upkeep": upkeep}, indent=2))
        with open(staging / LOG_FILE, "wb") as log_file:
            process = subprocess.Popen([self.python, "-m", "core.service.trainer", str(staging / JOB_FILE),
                                        str(staging / RESULT_FILE)], stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                       env=trainer_environment())
        self.running = Running(process, staging, now, time.monotonic(), by, now)
        log.info("trainer started (pid %s) on candles until %s, in %s", process.pid, now.isoformat(), staging)
        return now

    # -- finishing -------------------------------------------------------------------------------
    def finished(self) -> Outcome | None:
        """The outcome once the trainer has exited (or overrun its budget and been killed); else None."""
        run = self.running
        if run is None:
            return None
        seconds = time.monotonic() - run.started_wall
        code = run.process.poll()
        if code is None and seconds <= self.config.budget_seconds:
            return None
        if code is None:
            run.process.kill()
            run.process.wait(timeout=30)
            error = f"the trainer overran its budget of {self.config.budget_seconds:g} s and was stopped"
            result = None
        else:
            result, error = self._read(run, code)
        self.running = None
        self.last = Outcome(run.staging, run.started_at, run.by, result, error, seconds)
        return self.last

    def overdue(self) -> bool:
        run = self.running
        return run is not None and time.monotonic() - run.started_wall > self.config.budget_seconds

    @staticmethod
    def _read(run: Running, code: int) -> tuple[dict | None, str | None]:
        try:
            result = json.loads((run.staging / RESULT_FILE).read_text())
        except (OSError, ValueError):
            why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            return None, f"the trainer ended without a report ({why})"
        if result.get("error"):
            return None, result["error"]
        return result, None

    def stop(self) -> None:
        """The bot is stopping: the trainer goes with it (its staging directory is cleared next start)."""
        if self.running is not None:
            self.running.process.kill()
            self.running.process.wait(timeout=30)
            self.running = None

    def _keep_log(self, staging: Path, number: int) -> str | None:
        """A failed training's log outlives its staging directory: MODEL_STORE/failed-<N>.log."""
        source = staging / LOG_FILE
        if not source.is_file():
            return None
        target = self.config.store / f"failed-{number:04d}.log"
        shutil.move(str(source), target)
        return str(target)

    def settle(self, outcome: Outcome, markets: Sequence[str], now: datetime) -> tuple[str, int | None, Path | None]:
        """Record the outcome; (event name, version, directory to serve if promoted). Under the lock."""
        result, error = outcome.result, outcome.error
        final = None
        if result is not None:
            problem = probe(outcome.staging / "model", markets)
            if problem is not None:
                error, result = f"the trained model cannot serve: {problem}", None
        with self.db.begin() as conn:
            if result is None:
                kept = self._keep_log(outcome.staging, registry.next_version(conn))
                error = (error or "unknown failure") + (f"; the trainer's log: {kept}" if kept else "")
                number = registry.add(conn, model_id="(none)", created_at=outcome.started_at, status=registry.FAILED,
                                      path=None, markets=list(markets), reason=error,
                                      recent={"seconds": round(outcome.seconds, 1), "log": kept})
                audit(conn, now, None, "system", "retrain", f"failed: {error}", False)
                enqueue(conn, event(EventKind.ERROR, "retrain_failed", now, version=number, error=error,
                                    serving=registry.serving_version(conn)))
                name = "retrain_failed"
            else:
                number = registry.next_version(conn)
                final = self.config.store / f"v{number:04d}"
                if final.exists():
                    shutil.rmtree(final)
                os.replace(outcome.staging / "model", final)
                recent = dict(result["recent"]) | {"seconds": result.get("seconds"),
                                                   "training_seconds": result.get("training_seconds"),
                                                   "peak_rss_mb": result.get("peak_rss_mb"), "data": result.get("data")}
                c, s = recent["challenger"], recent["serving"]
                reason = _why(result["better"], c, s, recent.get("serving_in_sample", False))
                status = registry.CHALLENGER
                registry.add(conn, model_id=result["model_id"], created_at=outcome.started_at, status=status,
                             path=str(final), markets=result["markets"],
                             data_first=datetime.fromisoformat(result["data_first"]),
                             data_last=datetime.fromisoformat(result["data_last"]), parameters=result["parameters"],
                             validation=result["validation"], recent=recent, reason=reason)
                serving = registry.serving_version(conn)
                params = dict(version=number, model_id=result["model_id"], serving=serving,
                              challenger=_figures(c), current=_figures(s), in_sample=recent.get("serving_in_sample"),
                              period=recent["period"], seconds=result.get("seconds"))
                if result["better"]:
                    registry.promote(conn, number, now, outcome.by, reason)
                    audit(conn, now, None, "system", "retrain", f"version {number} promoted: {reason}", True)
                    enqueue(conn, event(EventKind.SYSTEM, "model_promoted", now, **params))
                    name = "model_promoted"
                else:
                    registry.set_status(conn, number, registry.REJECTED, reason)
                    audit(conn, now, None, "system", "retrain", f"version {number} rejected: {reason}", True)
                    enqueue(conn, event(EventKind.SYSTEM, "challenger_rejected", now, **params))
                    name = "challenger_rejected"
        shutil.rmtree(outcome.staging, ignore_errors=True)
        return name, number, final if name == "model_promoted" else None  # a rejected one stays: /promote


def _figures(f: dict) -> dict:
    keys = ("score", "total_return", "sharpe", "max_drawdown", "trades", "exposure", "log_loss", "roc_auc_buy")
    return {k: f.get(k) for k in keys}


def _why(better: bool, c: dict, s: dict, in_sample: bool) -> str:
    text = (f"score {c['score']:.2f} vs serving {s['score']:.2f} on the recent period "
            f"(return {c['total_return']:+.2%} vs {s['total_return']:+.2%}, trades {c['trades']} vs {s['trades']})")
    if in_sample:
        text += "; the serving model had seen that period in training"
    return ("better: " if better else "not better: ") + text


def default_store(database_url: str, name: str) -> Path:
    """Beside the SQLite file, else in the working directory."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent / name
    return Path(name).resolve()

