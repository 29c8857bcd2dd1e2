"""`python -m bench`: every performance figure of docs/performance.md, as `name: value unit` lines.

    python -m bench                  # everything (about 2 minutes on 2 cores, training 45 s of it)
    python -m bench --only cycle     # one group: cycle, inference, backtest, startup, stream, train
    python -m bench --only retrain   # a retraining beside the cycle (minutes; only when named)
    python -m bench --only cluster   # walk-forward and training on a LocalCluster, 1 and 2 workers (30+ minutes)
    python -m bench --repeat 5       # runs per figure where a run is a whole process (default 3)

Each line gives the median over repeated runs and their spread (min, max, p90 where there are 10 or
more), and the target where the project sets one. Candles are the bundled real ones (Binance, priced
in KRW) and, for 100 markets, synthetic markets resampled from them (bench/synthetic.py).
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time

GROUPS = ("cycle", "inference", "backtest", "startup", "stream", "train")
EXTRA = ("walkforward", "retrain", "cluster")  # minutes long: run only when asked for (--only walkforward)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=GROUPS + EXTRA,
                        help="run only this group (repeatable); walkforward runs only when named")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each whole-process figure (default 3)")
    parser.add_argument("--cycles", type=int, default=50, help="cycles measured per cycle figure (default 50)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    groups = args.only or GROUPS
    try:
        import torch

        trainer = f"torch {torch.__version__} with {torch.get_num_threads()} threads (training only)"
    except ImportError:
        trainer = "no torch (the training extra is not installed: train and walkforward are skipped)"
        groups = [g for g in groups if g not in ("train", "walkforward", "retrain", "cluster")]
    print(f"# autotrader benchmarks: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {trainer}", flush=True)
    started = time.perf_counter()
    if "cycle" in groups:
        from bench.cycle import cycle_figures

        emit(cycle_figures(4, args.cycles, 20) + cycle_figures(100, max(10, args.cycles // 5), 250))
    if "inference" in groups:
        from bench.inference import inference_figures

        emit(inference_figures())
    if "backtest" in groups:
        from bench.backtest import backtest_figures

        emit(backtest_figures(args.repeat))
    if "startup" in groups:
        from bench.process import startup_figures

        emit(startup_figures(args.repeat))
    if "stream" in groups:
        from bench.stream import stream_figures

        emit(stream_figures())
    if "train" in groups:
        from bench.process import training_figures

        emit(training_figures())
    if "retrain" in groups:
        from bench.retrain import retrain_figures

        emit(retrain_figures())
    if "walkforward" in groups:
        from bench.walkforward import walkforward_figures

        emit(walkforward_figures())
    if "cluster" in groups:
        from bench.cluster import cluster_figures

        emit(cluster_figures())
    print(f"# done in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def emit(figures) -> None:
    for figure in figures:
        print(figure.line(), flush=True)


if __name__ == "__main__":
    sys.exit(main())
