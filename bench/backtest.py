"""A year of hourly candles for the 4 default markets through the full cycle, model included."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.stats import Figure
from bench.synthetic import real_krw_candles, write_candle_dir
from core.data.features import build_feature_history
from core.data.markets import DEFAULT_MARKETS
from core.data.sources import CsvReplaySource
from core.trading.backtest import Simulation, identifiers
from core.trading.cycle import TradingCycle
from core.trading.feeds import PrecomputedFeed
from core.trading.paper import PaperExchange
from core.trading.portfolio import Portfolio
from models.manager import MultiCoinModelManager

START, END = "2024-11-01T01:00:00Z", "2025-11-01T00:00:00Z"  # 8,760 candle closes
HISTORY_FROM = "2024-10-01"  # a month before: features warm up on it, as they would on a full history


def autotrader() -> list[str]:
    script = Path(sys.executable).parent / "autotrader"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


# A small Python process runs the command and reports its child's wall time and peak memory: the
# bench's own fork would count its (large) image as the child's until exec.
_MEASURE = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
            "seconds = time.perf_counter() - t\n"
            "sys.stderr.write(done.stderr)\n"
            "print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(done.returncode)\n")


def timed_process(command: list[str], cwd: str | Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one fresh process running `command`."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *command], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-3:])} failed: {done.stderr.strip()[-500:]}")
    seconds, kilobytes = done.stdout.split()
    return float(seconds), int(kilobytes) / 1024  # ru_maxrss is in KB on Linux


def backtest_figures(repeat: int) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        data = write_candle_dir(real_krw_candles(DEFAULT_MARKETS, start=HISTORY_FROM, end="2025-11-01"), Path(tmp) / "krw")
        wall, peak = [], []
        for _ in range(repeat):
            seconds, megabytes = timed_process(autotrader() + ["backtest", "--data", str(data), "--start", START,
                                                               "--end", END], cwd=tmp)
            wall.append(seconds)
            peak.append(megabytes)
        phases = [_phases(data) for _ in range(repeat)]
    steps = phases[0]["market_steps"]
    return [
        Figure("backtest_1y_4_markets", tuple(wall), "s", "< 2.5 s",
               f"`autotrader backtest` end to end, {steps:,} market-steps, imports included"),
        Figure("backtest_peak_rss", tuple(peak), "MB", "< 300 MB", "the backtest process's peak resident memory"),
        Figure("backtest_load_candles", tuple(p["load"] for p in phases), "s"),
        Figure("backtest_features", tuple(p["features"] for p in phases), "s", "", "whole history, 4 markets"),
        Figure("backtest_inference", tuple(p["inference"] for p in phases), "s", "",
               f"{steps:,} windows in batches of {PrecomputedFeed.CHUNK}"),
        Figure("backtest_engine_loop", tuple(p["loop_us"] for p in phases), "us/market-step", "< 40 us",
               "decide, paper orders, portfolio, equity curve"),
        Figure("backtest_report", tuple(p["report"] for p in phases), "s", "", "metrics and buy-and-hold"),
    ]


def _phases(data: Path) -> dict:
    manager = MultiCoinModelManager(markets=DEFAULT_MARKETS)
    for market in DEFAULT_MARKETS:
        manager.get_model(market)  # model loading is start-up, not backtest work
    t0 = time.perf_counter()
    source = CsvReplaySource(data, DEFAULT_MARKETS, "1h", 3600)
    t1 = time.perf_counter()
    for candles in source.series.values():
        build_feature_history(candles, 3600)
    t2 = time.perf_counter()
    ticks = source.timeline()
    ticks = ticks[(ticks >= pd.Timestamp(START)) & (ticks <= pd.Timestamp(END))]
    feed = PrecomputedFeed(source.series, manager, 3600, ticks[0], ticks[-1])  # features again, then inference
    t3 = time.perf_counter()
    cycle = TradingCycle(feed, PaperExchange(1_000_000, 0.0005), Portfolio(1_000_000, 1_000_000),
                         new_identifier=identifiers())
    simulation = Simulation(ticks, cycle.run, cycle, source.series, 1_000_000, 3600)
    while not simulation.finished:
        simulation.advance()
    t4 = time.perf_counter()
    simulation.result()
    t5 = time.perf_counter()
    market_steps = sum(1 for s in simulation.steps if s.signal is not None)
    return {"load": t1 - t0, "features": t2 - t1, "inference": (t3 - t2) - (t2 - t1),
            "loop_us": (t4 - t3) / market_steps * 1e6, "report": t5 - t4, "market_steps": market_steps}
