"""A retraining as the bot runs it, beside the trading cycle: the trainer process on the four default
markets' bundled history (8 years, priced in KRW) with the default recipe (RETRAIN_RECENT_DAYS 30,
3 months of validation, 6 of head training, 6 LSTM epochs of 60,000 windows, every core but one), while the agent runs a
cycle every 0.25 s on real models and SQLite. The cycle's latency before and during the training,
the training's wall time and the trainer's peak memory."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.cycle import TRADING
from bench.stats import Figure
from bench.synthetic import real_krw_candles
from core.data.candles import write_candle_csv
from core.data.sources import MemorySource
from core.runtime.assembly import trainer_threads, trading_agent
from core.service.model_versions import serving_at_start
from core.service.retraining import RetrainConfig, Retrainer
from core.service.serving import ModelServing
from core.service.settings import Settings
from core.storage import model_registry as registry
from core.storage.database import open_database
from core.trading.feeds import HISTORY
from models.manager import MultiCoinModelManager
from models.shipped import SHIPPED_MODEL_DIR

BEFORE, PACE = 40, 0.25


def retrain_figures(budget_seconds: float = 900) -> list[Figure]:
    series = real_krw_candles()
    markets = tuple(series)
    cycles = HISTORY + BEFORE + int(budget_seconds / PACE) + 2
    live = {m: c.iloc[-cycles:] for m, c in series.items()}
    clock = iter(next(iter(live.values())).index[HISTORY:] + pd.Timedelta(hours=1))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        for market, candles in series.items():
            write_candle_csv(candles, data / f"{market}_1h.csv")
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = open_database(url)
        first = next(clock).to_pydatetime()
        serving = serving_at_start(db, SHIPPED_MODEL_DIR, markets, first)
        agent = trading_agent(Settings(markets=markets, database_url=url), db,
                              MultiCoinModelManager(serving.path, markets), TRADING,
                              source=MemorySource(live, 3600), now=first)
        models = ModelServing(agent, serving.version, serving.path,
                              Retrainer(db, RetrainConfig(store=Path(tmp) / "store", data_dir=data,
                                                          train={"threads": trainer_threads()})))

        def cycle() -> float:
            now = next(clock).to_pydatetime()
            started = time.perf_counter()
            agent.run_cycle(now)
            return (time.perf_counter() - started) * 1000

        before = [cycle() for _ in range(BEFORE)]
        started = time.perf_counter()
        models.retrain(series[markets[0]].index[-1].to_pydatetime() + pd.Timedelta(hours=1), "bench")
        during = []
        while models.retrainer.running.process.poll() is None and time.perf_counter() - started < budget_seconds:
            during.append(cycle())
            time.sleep(PACE)
        wall = time.perf_counter() - started
        models.watch(agent.clock())
        latest = registry.versions(db, limit=1)[0]
        db.dispose()
    recent = latest.recent
    if latest.status == "failed":
        return [Figure("retrain_failed", (wall,), "s", "", latest.reason)]
    c, s = recent["challenger"], recent["serving"]
    verdict = (f"version 2 {latest.status}: score {c['score']:.2f} vs serving {s['score']:.2f} on "
               f"{recent['period'][0][:10]} .. {recent['period'][1][:10]}")
    return [
        Figure("retrain_wall", (wall,), "s", "", f"trainer process, 4 markets x 8 years; {verdict}"),
        Figure("retrain_training", (recent["training_seconds"],), "s", "", "of which training the challenger; "
               "the rest judges both models on the recent period"),
        Figure("retrain_peak_rss", (recent["peak_rss_mb"],), "MB", "", "the trainer process (the bot's own is "
               "unchanged: it only polls the child)"),
        Figure("cycle_before_training", tuple(before), "ms", "", "4 markets, real models, SQLite"),
        Figure("cycle_during_training", tuple(during), "ms", "",
               f"{len(during)} cycles, one every {PACE:g} s, none skipped; median before "
               f"{statistics.median(before):.1f} ms"),
    ]
