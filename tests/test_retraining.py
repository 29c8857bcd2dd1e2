"""Retraining: the model registry, the trainer process, promotion only when better, the safe swap, the
commands and the CLI (issue: learning while it runs)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.views import render
from core.i18n import language
from core.runtime.runtime import Job, ReplaySchedule, Runtime
from core.service.commands import CommandService
from core.service.model_versions import VersionError, promote, rollback_target, serving_at_start
from core.service.registry import CONSOLE, Caller, Source
from core.service.replies import Confirm, Notice, Problem
from core.service.retraining import Outcome, RetrainConfig, Retrainer
from core.service.serving import ModelServing
from core.service.settings import load_settings
from core.storage import model_registry as registry
from core.storage.schema import audit_log
from models.manager import MultiCoinModelManager
from tests.alerts import alert_texts
from tests.fakes.feeds import ScriptedFeed
from tests.test_agent import make_agent
from tests.test_i18n import english_sentences

MARKETS = ("KRW-BTC", "KRW-ETH")
T0 = datetime(2025, 10, 20, tzinfo=timezone.utc)
TINY = {"encoder": {"hidden_size": 16}, "epochs": 1, "samples_per_epoch": 2000, "head_rounds": 30}
ADMIN = Caller(user_id=7, source=Source.TELEGRAM, role="admin", chat_id=7)
VIEWER = Caller(user_id=8, source=Source.TELEGRAM, role="viewer", chat_id=8)


def config(tmp_path: Path, data: Path, **changes) -> RetrainConfig:
    return replace(RetrainConfig(store=tmp_path / "store", data_dir=data, validation_months=1, head_months=2,
                                 train=TINY), **changes)


def serving_agent(db, tiny_models, tmp_path, data):
    """A paper agent on a scripted feed, serving the registry's version 1 (the tiny models)."""
    agent = make_agent(db, ScriptedFeed())
    serving = serving_at_start(db, tiny_models, MARKETS, T0)
    agent.manager = MultiCoinModelManager(serving.path, MARKETS)
    models = ModelServing(agent, serving.version, serving.path, Retrainer(db, config(tmp_path, data)))
    service = CommandService(agent)
    service.models = models
    return agent, models, service


def staged(retrainer: Retrainer, source: Path, name: str = "staging-test") -> Path:
    staging = retrainer.config.store / name
    shutil.copytree(source, staging / "model")
    return staging


def report(better: bool, model_id: str = "hybrid-global-test") -> dict:
    figures = {"score": 0.5, "total_return": 0.01, "sharpe": 1.2, "max_drawdown": -0.01, "trades": 6,
               "exposure": 0.3, "log_loss": 1.0, "roc_auc_buy": 0.56}
    worse = figures | {"score": -0.5, "total_return": -0.01, "sharpe": -0.8}
    return {"model_id": model_id, "markets": list(MARKETS), "data_first": "2025-01-01T00:00:00+00:00",
            "data_last": "2025-10-19T23:00:00+00:00", "parameters": {"label": {"horizon": 12}}, "validation": {},
            "recent": {"period": ["2025-09-20T00:00:00+00:00", "2025-10-20T00:00:00+00:00"],
                       "challenger": figures if better else worse, "serving": worse if better else figures,
                       "serving_in_sample": False},
            "better": better, "seconds": 12.0, "training_seconds": 10.0, "peak_rss_mb": 400.0}


# -- the registry -------------------------------------------------------------------------------
def test_the_registry_starts_with_the_model_first_served_and_keeps_its_choice_across_restarts(db, tiny_models,
                                                                                           tmp_path):
    first = serving_at_start(db, tiny_models, MARKETS, T0)
    assert first.version.version == 1 and first.version.status == "serving" and first.note is None
    assert first.version.reason == "the model the bot first served" and first.version.data_first is not None
    assert serving_at_start(db, tiny_models, MARKETS, T0).version.version == 1
    assert len(registry.versions(db)) == 1  # a restart registers nothing new
    other = tmp_path / "other"
    shutil.copytree(tiny_models, other)
    chosen = serving_at_start(db, other, MARKETS, T0)  # MODEL_DIR changed to an unregistered directory
    assert chosen.version.version == 2 and registry.get(db, 1).status == "retired"
    again = serving_at_start(db, tiny_models, MARKETS, T0)  # the old MODEL_DIR again: the registry's choice wins
    assert again.version.version == 2 and again.path == other.resolve()
    assert rollback_target(db).version == 1


def test_a_serving_version_whose_files_broke_is_not_served_at_start(db, tiny_models, tmp_path):
    serving_at_start(db, tiny_models, MARKETS, T0)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models, broken)
    serving_at_start(db, broken, MARKETS, T0)
    (broken / "global" / "lightgbm.txt").write_text("tree\n")
    start = serving_at_start(db, tiny_models, MARKETS, T0)
    assert start.path == tiny_models.resolve() and "version 2 cannot serve" in start.note


def test_promote_and_rollback_are_checked_audited_and_announced(db, tiny_models, tmp_path):
    serving_at_start(db, tiny_models, MARKETS, T0)
    with pytest.raises(VersionError, match="no model version 9"):
        promote(db, 9, MARKETS, T0, "console", "console", None, "promote", "test")
    with pytest.raises(VersionError, match="already serving"):
        promote(db, 1, MARKETS, T0, "console", "console", None, "promote", "test")
    other = tmp_path / "other"
    shutil.copytree(tiny_models, other)
    with db.begin() as conn:
        number = registry.add(conn, model_id="x", created_at=T0, status="rejected", path=str(other),
                              markets=MARKETS, reason="test")
    (other / "global" / "lstm.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(VersionError, match="cannot serve"):
        promote(db, number, MARKETS, T0, "console", "console", None, "promote", "test")
    assert registry.serving(db).version == 1
    shutil.rmtree(other)
    shutil.copytree(tiny_models, other)
    promote(db, number, MARKETS, T0, "console", "console", None, "promote", "test")
    assert registry.serving(db).version == number and rollback_target(db).version == 1
    assert any("serves from the next cycle, set by console" in t for t in alert_texts(db))


# -- the schedule -------------------------------------------------------------------------------
def test_retraining_falls_due_at_retrain_at_korea_time_every_n_days_on_a_simulated_clock():
    settings = load_settings({"RETRAIN_AT": "03:00", "RETRAIN_EVERY_DAYS": "2"}, env_file=None)
    assert settings.retrain_at_utc.hour == 18  # 03:00 KST is 18:00 UTC the day before
    clock = ReplaySchedule(settings, datetime(2025, 1, 1, 0, tzinfo=timezone.utc))
    fired = [t for t in (datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(hours=h) for h in range(24 * 7))
             if clock.due(t)]
    assert fired == [datetime(2025, 1, d, 18, tzinfo=timezone.utc) for d in (1, 3, 5, 7)]
    assert ReplaySchedule(load_settings({"RETRAIN_AT": "off"}, env_file=None), T0).due(T0 + timedelta(days=9)) is False
    daily = Runtime.__dict__["jobs"]  # the live schedule: a daily job at the UTC time
    assert callable(daily)


def test_due_respects_every_days_from_the_registry(db, tiny_models, tmp_path, small_dataset):
    serving_at_start(db, tiny_models, MARKETS, T0)
    retrainer = Retrainer(db, config(tmp_path, small_dataset, every_days=3))
    assert retrainer.due(T0)  # never retrained: due
    with db.begin() as conn:
        registry.add(conn, model_id="(none)", created_at=T0, status="failed", path=None, markets=MARKETS, reason="x")
    assert not retrainer.due(T0 + timedelta(days=2))
    assert retrainer.due(T0 + timedelta(days=3))


# -- settling an outcome: promotion only when better, never a broken artifact -------------------
@pytest.mark.parametrize("better", [True, False])
def test_a_challenger_is_promoted_only_when_better_and_served_from_the_next_cycle(db, tiny_models, tmp_path,
                                                                                small_dataset, better):
    agent, models, _ = serving_agent(db, tiny_models, tmp_path, small_dataset)
    staging = staged(models.retrainer, tiny_models)
    outcome = Outcome(staging, T0, "schedule", report(better), None, 12.0)
    name, number, promoted = models.retrainer.settle(outcome, MARKETS, T0)
    version = registry.get(db, number)
    assert number == 2 and Path(version.path) == models.retrainer.config.store / "v0002"
    assert (Path(version.path) / "global" / "lightgbm.txt").is_file() and not staging.exists()
    if better:
        assert name == "model_promoted" and version.status == "serving" and promoted == Path(version.path)
        assert registry.get(db, 1).status == "retired"
    else:
        assert name == "challenger_rejected" and version.status == "rejected" and promoted is None
        assert registry.serving(db).version == 1
    models.sync(T0)
    assert models.version.version == (2 if better else 1)
    assert len(agent.cycle.feed.managers) == (1 if better else 0)  # the feed's model changed between cycles
    texts = alert_texts(db)
    assert any(("promoted: it beat version 1" if better else "rejected: it did not beat version 1") in t
               for t in texts), texts


def test_a_corrupt_artifact_leaves_the_serving_model_and_raises_an_error_alert(db, tiny_models, tmp_path,
                                                                              small_dataset):
    agent, models, _ = serving_agent(db, tiny_models, tmp_path, small_dataset)
    staging = staged(models.retrainer, tiny_models)
    model_file = staging / "model" / "global" / "lightgbm.txt"
    model_file.write_text(model_file.read_text()[:200])  # truncated mid-write
    name, number, promoted = models.retrainer.settle(Outcome(staging, T0, "schedule", report(True), None, 5.0),
                                                      MARKETS, T0)
    assert name == "retrain_failed" and promoted is None
    failed = registry.get(db, number)
    assert failed.status == "failed" and failed.path is None and "cannot serve" in failed.reason
    models.sync(T0)
    assert models.version.version == 1 and registry.serving(db).version == 1
    assert any(t.startswith("Retraining failed") and "Version 1 keeps serving" in t for t in alert_texts(db))


def test_a_killed_trainer_leaves_the_serving_model_and_raises_an_error_alert(sqlite_db, tiny_models, tmp_path,
                                                                            small_dataset, monkeypatch):
    db = sqlite_db
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:trainer-must-not-see-this")
    monkeypatch.setenv("UPBIT_SECRET_KEY", "upbit-secret-trainer-must-not-see")
    agent, models, _ = serving_agent(db, tiny_models, tmp_path, small_dataset)
    models.retrain(T0, "console")
    pid = models.retrainer.running.process.pid
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"trainer-must-not-see" not in environ and b"PYTHONUNBUFFERED=1" in environ  # no secret reaches it
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while models.watch(T0) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    failed = registry.versions(db, limit=1)[0]
    assert failed.status == "failed" and "killed by signal 9" in failed.reason
    assert Path(failed.recent["log"]).is_file() and "the trainer's log" in failed.reason  # kept for the operator
    assert registry.serving(db).version == 1 and models.version.version == 1
    assert any("Retraining failed" in t for t in alert_texts(db))
    assert not list(models.retrainer.config.store.glob("v*"))


@pytest.mark.slow
def test_a_real_trainer_judges_its_challenger_on_the_recent_period_while_cycles_keep_their_schedule(
        sqlite_db, tiny_models, tmp_path, small_dataset):
    """The trainer trains and judges in its own process; the cycle keeps its schedule meanwhile."""
    db = sqlite_db
    agent, models, service = serving_agent(db, tiny_models, tmp_path, small_dataset)
    runtime = Runtime(settings=load_settings({"CYCLE_SECONDS": "0.25", "RETRAIN_AT": "off"}, env_file=None),
                      service=service, models=models)
    cycle = Job(name="cycle", run=runtime._cycle, every_seconds=0.25)
    latencies, during = [], 0

    async def drive():
        nonlocal during
        assert isinstance(await runtime.command("/retrain", CONSOLE), Notice)
        again = await runtime.command("/retrain", CONSOLE)
        assert isinstance(again, Problem) and "already training since" in again.text
        deadline = time.monotonic() + 240
        while models.retrainer.running.process.poll() is None and time.monotonic() < deadline:
            started = time.monotonic()
            await runtime.run_job(cycle)
            latencies.append(time.monotonic() - started)
            during += 1
            await asyncio.sleep(0.25)
        await runtime.run_job(Job(name="model watch", run=models.watch, every_seconds=10))

    asyncio.run(drive())
    assert during >= 4 and agent.cycles == during  # no cycle was skipped or waited for the trainer
    assert max(latencies) < 1.0, latencies
    latest = registry.versions(db, limit=1)[0]
    assert latest.version == 2 and latest.status in ("serving", "rejected"), latest.reason
    recent = latest.recent
    assert set(recent) >= {"period", "challenger", "serving", "serving_in_sample", "peak_rss_mb", "training_seconds"}
    assert recent["period"][0] == "2025-10-01T23:00:00+00:00" or recent["period"][0] < recent["period"][1]
    assert (latest.status == "serving") == (recent["challenger"]["score"] > recent["serving"]["score"])
    assert latest.parameters["splits"]["test_start"] == recent["period"][0]  # trained before the judged period
    with language("ko"):
        shown = render(service.handle("/model", replace(ADMIN, language="ko")))
    assert "버전 2" in shown and english_sentences(shown) == [], shown


# -- the commands -------------------------------------------------------------------------------
def test_promote_and_rollback_ask_first_are_for_admins_and_are_audited(db, tiny_models, tmp_path, small_dataset):
    agent, models, service = serving_agent(db, tiny_models, tmp_path, small_dataset)
    staging = staged(models.retrainer, tiny_models)
    models.retrainer.settle(Outcome(staging, T0, "schedule", report(False), None, 12.0), MARKETS, T0)
    refused = service.handle("/promote 2", VIEWER, confirmed=False)
    assert isinstance(refused, Problem) and "admins only" in refused.text
    question = service.handle("/promote 2", ADMIN, confirmed=False)
    assert isinstance(question, Confirm) and "Serve model version 2" in question.question
    assert registry.serving(db).version == 1  # nothing changes before the answer
    done = service.confirm(question.key, ADMIN)
    assert isinstance(done, Notice) and "version 2" in done.text
    assert registry.serving(db).version == 2 and models.version.version == 2
    assert isinstance(service.handle("/promote 2", ADMIN, confirmed=False), Problem)  # already serving
    back = service.handle("/rollback", ADMIN, confirmed=False)
    assert isinstance(back, Confirm) and "Go back to model version 1" in back.question
    assert isinstance(service.confirm(back.key, ADMIN), Notice)
    assert registry.serving(db).version == 1 and models.version.version == 1
    with db.connect() as conn:
        audit = conn.execute(select(audit_log.c.command, audit_log.c.detail, audit_log.c.succeeded)).all()
    assert ("promote", "refused: not an admin", False) in [tuple(a) for a in audit]
    assert any(a.command == "promote" and a.succeeded and "version 2 serving" in a.detail for a in audit)
    assert any(a.command == "rollback" and a.succeeded and "version 1 serving" in a.detail for a in audit)
    for line in ("/model", "/promote 7", "/promote x", "/rollback"):
        with language("ko"):
            shown = render(service.handle(line, replace(ADMIN, language="ko"), confirmed=False))
        assert english_sentences(shown) == [], (line, shown)
    english = render(service.handle("/model", CONSOLE))
    assert "Serving: version 1" in english and "version 2 (retired" in english
    assert "Chosen parameters: label 12 candles ahead, threshold 0.50%" in english


def test_the_models_cli_lists_shows_promotes_and_rolls_back(db_url, tiny_models, tmp_path, monkeypatch, capsys):
    from bot.cli import main
    from core.storage.database import open_database

    engine = open_database(db_url)
    serving_at_start(engine, tiny_models, MARKETS, T0)
    retrainer = Retrainer(engine, config(tmp_path, tmp_path))
    retrainer.settle(Outcome(staged(retrainer, tiny_models), T0, "schedule", report(False), None, 1.0), MARKETS, T0)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MARKETS", ",".join(MARKETS))
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "serving" in listed and "rejected" in listed and "not better" in listed
    assert main(["models", "show", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "rejected"
    assert main(["models", "promote", "2"]) == 0 and "version 2" in capsys.readouterr().out
    assert main(["models", "rollback"]) == 0 and "version 1" in capsys.readouterr().out
    assert main(["models", "promote", "9"]) == 2
    assert "no model version 9" in capsys.readouterr().err


def test_the_model_watch_never_queues_behind_a_busy_agent(db, tiny_models, tmp_path, small_dataset):
    """While a cycle or a command holds the lock, the 10-second watch is skipped, not queued (it would
    only pile up behind a slow exchange, and be cancelled at shutdown)."""
    agent, models, service = serving_agent(db, tiny_models, tmp_path, small_dataset)
    runtime = Runtime(settings=load_settings({"RETRAIN_AT": "off"}, env_file=None), service=service, models=models)
    ran = []
    watch = next(j for j in runtime.jobs(T0) if j.name == "model watch")
    assert watch.when_idle and watch.every_seconds == 10
    probe_job = replace(watch, run=lambda now: ran.append(now))

    async def drive():
        async with runtime.lock:
            await runtime.run_job(probe_job)  # busy: skipped at once, nothing waits for the lock
        await runtime.run_job(probe_job)

    asyncio.run(asyncio.wait_for(drive(), 10))
    assert len(ran) == 1
