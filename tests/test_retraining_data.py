"""Retraining on real data paths: the trainer's data upkeep against the fake Upbit, and a replay that
retrains on its simulated clock (helpers in tests/test_retraining.py)."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from sqlalchemy import select

from core.data.candles import load_candle_csv, write_candle_csv
from core.service.model_versions import serving_at_start
from core.service.retraining import Retrainer
from core.service.serving import ModelServing
from core.service.settings import load_settings
from core.storage import model_registry as registry
from tests.alerts import alert_texts
from tests.fakes.feeds import ScriptedFeed
from tests.test_agent import make_agent
from tests.test_retraining import MARKETS, T0, TINY, config


@pytest.mark.slow
def test_a_replay_retrains_on_its_simulated_clock_and_serves_what_it_promotes(tmp_path, tiny_models, monkeypatch):
    """RETRAIN_AT on the replay's clock: each retraining sees only the candles closed by then, and a
    promoted version's signals follow from the next cycle."""
    from core.runtime.assembly import RunOptions, assemble
    from core.service import retraining
    from core.storage.schema import signals
    from tests.conftest import DATA

    monkeypatch.setattr(retraining, "MIN_LSTM_MONTHS", 1)  # a short replay: retraining from its 100th day
    data = tmp_path / "data"
    data.mkdir()
    for coin in ("BTC", "ETH"):
        write_candle_csv(load_candle_csv(DATA / "binance-1h" / f"USDT-{coin}_1h.csv.gz").iloc[-2800:],
                         data / f"KRW-{coin}_1h.csv")
    settings = load_settings({"RETRAIN_AT": "03:00", "RETRAIN_EVERY_DAYS": "7"}, env_file=None)
    runtime = assemble(settings, RunOptions(markets=MARKETS, model_dir=tiny_models, replay=data, speed=0,
                                            replay_db=f"sqlite:///{tmp_path / 'replay.db'}"))
    retrainer = runtime.models.retrainer
    retrainer.config = replace(retrainer.config, recent_days=7, validation_months=1, head_months=1, train=TINY)
    assert retrainer.config.store == tmp_path / "replay-models"
    try:
        result = asyncio.run(runtime.replay_ticks())
        db = runtime.db
        trained = [v for v in registry.versions(db) if v.version > 1]
        assert len(trained) >= 2 and result is not None
        for v in trained:
            assert (v.created_at.hour, v.created_at.minute) == (18, 0), v  # 03:00 KST on the simulated clock
            assert v.status != "failed", v.reason
            assert v.data_last + timedelta(hours=1) <= v.created_at  # no candle from its future
        gaps = [b.created_at - a.created_at for a, b in zip(trained[::-1], trained[::-1][1:])]
        assert all(g >= timedelta(days=7) for g in gaps), gaps
        with db.connect() as conn:
            used = conn.execute(select(signals.c.candle_at, signals.c.model_id).order_by(signals.c.id)).all()
        promoted = [v for v in trained if v.promoted_at is not None]
        for v in promoted:
            after = {m for at, m in used if at.replace(tzinfo=timezone.utc) >= v.promoted_at}
            assert v.model_id in after or any(p.promoted_at > v.promoted_at for p in promoted), (v, after)
        assert {m for _, m in used} >= {registry.get(db, 1).model_id}
    finally:
        runtime.close()


def _upkeep_case(tmp_path, small_dataset, break_candle: bool):
    """DATA_DIR holds all but the last 1,000 hours; the fake Upbit has them (one broken, if asked)."""
    full = {m: load_candle_csv(small_dataset / f"{m}_1h.csv") for m in MARKETS}
    data = tmp_path / "data-store"
    data.mkdir()
    for market, candles in full.items():
        write_candle_csv(candles.iloc[:-1000], data / f"{market}_1h.csv")
    if break_candle:
        full["KRW-ETH"] = full["KRW-ETH"].copy()
        full["KRW-ETH"].iloc[-10, full["KRW-ETH"].columns.get_loc("high")] = 1.0  # high below the open
    end = full["KRW-BTC"].index[-1] + timedelta(hours=1)
    return full, data, end


@pytest.mark.parametrize("break_candle", [False, True])
def test_the_trainer_brings_the_data_up_to_date_from_upbit_and_never_trains_on_a_bad_candle(
        sqlite_db, tiny_models, tmp_path, small_dataset, break_candle):
    from tests.fakes.upbit_server import FakeUpbit

    db = sqlite_db

    full, data, end = _upkeep_case(tmp_path, small_dataset, break_candle)
    agent = make_agent(db, ScriptedFeed())
    serving = serving_at_start(db, tiny_models, MARKETS, T0)
    with FakeUpbit(full, now=end) as upbit:
        retrainer = Retrainer(db, config(tmp_path, data, api_url=upbit.url, history_days=60))
        models = ModelServing(agent, serving.version, serving.path, retrainer)
        models.retrain(end.to_pydatetime(), "console")
        deadline = time.monotonic() + 120
        while models.watch(end.to_pydatetime()) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    latest = registry.versions(db, limit=1)[0]
    if break_candle:
        assert latest.status == "failed" and "high/low do not enclose open and close" in latest.reason
        assert registry.serving(db).version == 1
        assert any("Retraining failed" in t and "KRW-ETH" in t for t in alert_texts(db))
        return
    assert latest.status in ("serving", "rejected"), latest.reason
    report = latest.recent["data"]
    assert {m: report[m]["new_candles"] for m in MARKETS} == {"KRW-BTC": 1000, "KRW-ETH": 1000}
    assert all(report[m]["gaps"] >= 0 and "missing_candles" in report[m] for m in MARKETS)
    assert latest.data_last == full["KRW-BTC"].index[-1].to_pydatetime()  # trained up to the newest candle
    assert len(load_candle_csv(data / "KRW-BTC_1h.csv")) == len(full["KRW-BTC"])
