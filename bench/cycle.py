"""One trading cycle as the running agent does it: candles in memory, features carried forward,
batched inference, engine, paper orders, everything stored in SQLite (a fresh file)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from bench.stats import Figure
from bench.synthetic import real_krw_candles, resampled_markets
from core.data.sources import MemorySource
from core.runtime.assembly import trading_agent
from core.service.settings import Settings
from core.storage.database import open_database
from core.storage.schema import orders
from core.trading.feeds import HISTORY
from core.trading.types import RiskSettings
from models.manager import MultiCoinModelManager

# thresholds low enough that some cycles place orders: a cycle with only HOLDs would flatter the figure
TRADING = RiskSettings(buy_threshold=0.42, sell_threshold=0.45)


def cycle_figures(n_markets: int, cycles: int, target_ms: float) -> list[Figure]:
    rows = HISTORY + cycles + 1
    if n_markets == 4:
        series = {m: c.iloc[-rows:] for m, c in real_krw_candles(start="2025-01-01").items()}
        label = "4_markets"
    else:
        series = resampled_markets(n_markets, rows)
        label = f"{n_markets}_markets"
    clock = next(iter(series.values())).index + pd.Timedelta(hours=1)  # candle closes
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = open_database(url)
        settings = Settings(markets=tuple(series), database_url=url)
        manager = MultiCoinModelManager(markets=tuple(series))
        started = time.perf_counter()
        agent = trading_agent(settings, db, manager, TRADING, source=MemorySource(series, 3600),
                              now=clock[-cycles - 1].to_pydatetime())
        start_s = time.perf_counter() - started
        times = []
        for now in clock[-cycles:]:
            started = time.perf_counter()
            results = agent.run_cycle(now.to_pydatetime())
            times.append((time.perf_counter() - started) * 1000)
            assert len(results) == n_markets and all(r.error is None for r in results), results
        with db.connect() as conn:
            placed = conn.execute(select(func.count()).select_from(orders)).scalar()
        db.dispose()
    models = len(manager.loaded_paths)
    return [
        Figure(f"cycle_{label}", tuple(times), "ms", f"< {target_ms:g} ms",
               f"{placed} orders placed in {cycles} cycles; {models} model directories loaded"),
        Figure(f"start_{label}", (start_s,), "s", "",
               f"{HISTORY} candles per market fetched, features started, models loaded"),
    ]
