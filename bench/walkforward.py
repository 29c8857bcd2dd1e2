"""The walk-forward's own time: the 4 default markets over the whole bundled history, as
`autotrader walkforward` runs it (28 quarterly folds, an LSTM a year, a head and calibration a quarter,
30 candidates (entry margin x exit x cooldown) simulated on every validation slice, the test period and the trend rule simulated)."""
from __future__ import annotations

import time

from bench.stats import Figure
from core.data.bundled import BUNDLED_DATA_DIR
from core.data.markets import DEFAULT_MARKETS
from core.research.walkforward import WalkForwardConfig, run_walkforward


def walkforward_figures() -> list[Figure]:
    started = time.perf_counter()
    report = run_walkforward(BUNDLED_DATA_DIR / "binance-1h", DEFAULT_MARKETS, WalkForwardConfig(), progress=False)
    seconds = time.perf_counter() - started
    folds = report["folds"]
    return [Figure("walkforward_4_markets_2019_2025", (seconds,), "s", "< 900 s on 2 cores",
                   f"{len(folds)} folds; slowest fold {max(f['seconds'] for f in folds):.0f} s")]
