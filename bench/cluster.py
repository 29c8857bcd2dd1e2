"""Research on a Dask LocalCluster, 1 worker against 2 (one thread each), and the serial run beside:

  - the walk-forward of the 4 default markets over the whole bundled history (bench/walkforward.py's run);
  - `train --markets all` on 150 synthetic markets (bench/synthetic.py) of a year of candles each.

Each figure is one run (minutes each); the speed-up is the 1-worker time over the 2-worker time.
"""
from __future__ import annotations

import time

from bench.stats import Figure
from core.data.bundled import BUNDLED_DATA_DIR
from core.data.markets import DEFAULT_MARKETS
from core.research.cluster import connect
from core.research.walkforward import WalkForwardConfig, run_walkforward

WORKERS = (1, 2)


def walkforward_cluster_figures(serial: bool = True) -> list[Figure]:
    seconds, folds = {}, 0
    runs = (["serial"] if serial else []) + [f"local-{n}" for n in WORKERS]
    for run in runs:
        scheduler, _, workers = run.partition("-")
        with connect(scheduler, int(workers) if workers else None) as runner:
            started = time.perf_counter()
            report = run_walkforward(BUNDLED_DATA_DIR / "binance-1h", DEFAULT_MARKETS, WalkForwardConfig(),
                                     progress=False, runner=runner)
            seconds[run] = time.perf_counter() - started
            folds = len(report["folds"])
    out = [Figure(f"walkforward_{run.replace('-', '_')}", (s,), "s", "",
                  f"{folds} folds; {'torch and LightGBM on every core' if run == 'serial' else 'one thread a worker'}")
           for run, s in seconds.items()]
    out.append(Figure("walkforward_speedup_2_vs_1_worker", (seconds["local-1"] / seconds["local-2"],), "x",
                      ">= 1.7 (issue 17)", "LocalCluster, 4 markets, 2019-2025"))
    return out


def training_cluster_figures(markets: int = 150, rows: int = 4380) -> list[Figure]:
    """`train` on `markets` synthetic markets of `rows` hours each (per-market heads), 1 worker and 2."""
    import tempfile
    from pathlib import Path

    from bench.synthetic import resampled_markets, write_candle_dir
    from models.training import TrainConfig, train_models

    seconds, heads = {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        data = write_candle_dir(resampled_markets(markets, rows), Path(tmp) / "data")
        names = sorted(p.name.split("_", 1)[0] for p in data.glob("*_1h.csv"))
        for workers in WORKERS:
            with connect("local", workers) as runner:
                started = time.perf_counter()
                report = train_models(data, names, Path(tmp) / f"models-{workers}", progress=False, runner=runner,
                                      config=TrainConfig(per_market_heads=True))
                seconds[workers] = time.perf_counter() - started
                heads = len(report.per_market_heads)
    note = f"{markets} synthetic markets x {rows:,} hours, per-market heads (kept: {heads})"
    out = [Figure(f"train_{markets}_markets_local_{w}", (s,), "s", "", note) for w, s in seconds.items()]
    out.append(Figure(f"train_{markets}_markets_speedup_2_vs_1_worker", (seconds[1] / seconds[2],), "x", "", note))
    return out


def cluster_figures() -> list[Figure]:
    return walkforward_cluster_figures(serial=False) + training_cluster_figures()
