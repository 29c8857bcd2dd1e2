"""Whole processes: `autotrader run` starting against a local fake Upbit (start-up time, resident
memory with its models loaded) and `autotrader train` on the bundled candles."""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from bench.backtest import autotrader, timed_process
from bench.stats import Figure
from bench.synthetic import real_krw_candles, write_candle_dir
from core.data.bundled import BUNDLED_DATA_DIR
from core.data.candles import load_candle_csv
from core.data.markets import DEFAULT_MARKETS
from tests.fakes.upbit_server import FakeUpbit

READY = "first cycle at"  # the console's banner, printed once the agent is assembled and primed


def startup_figures(repeat: int) -> list[Figure]:
    runs = {markets: [_start_once(markets) for _ in range(repeat)] for markets in (DEFAULT_MARKETS, DEFAULT_MARKETS[:1])}
    four, one = runs[DEFAULT_MARKETS], runs[DEFAULT_MARKETS[:1]]
    return [
        Figure("startup_to_first_poll", tuple(r["poll"] for r in four), "s", "< 1.5 s",
               "process start to the first candle request reaching the exchange"),
        Figure("startup_to_ready", tuple(r["ready"] for r in four), "s", "",
               "4 markets' histories fetched, features started, models loaded, console waiting"),
        Figure("rss_running_4_markets", tuple(r["rss"] for r in four), "MB", "< 250 MB",
               f"VmRSS when ready; peak {max(r['hwm'] for r in four):.0f} MB"),
        Figure("rss_running_1_market", tuple(r["rss"] for r in one), "MB", "",
               "MARKETS=KRW-BTC: the other models are never loaded"),
        Figure("cli_help", tuple(timed_process(autotrader() + ["--help"])[0] for _ in range(max(3, repeat))), "s",
               "< 0.5 s", "`autotrader --help`, a fresh process"),
    ]


def _start_once(markets: tuple[str, ...]) -> dict:
    hour = pd.Timestamp.now(tz="UTC").floor("h")
    series = {}
    for market, candles in real_krw_candles(markets, start="2025-06-01").items():
        candles = candles.iloc[-500:].copy()
        candles.index = candles.index + (hour - candles.index[-1])  # the newest candle is the forming one
        series[market] = candles
    with tempfile.TemporaryDirectory() as tmp, FakeUpbit(series) as upbit:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "UPBIT_", "MAX_"))}
        env.update(AUTOTRADER_MODE="paper", DATABASE_URL=f"sqlite:///{tmp}/agent.db", UPBIT_API_URL=upbit.url,
                   MARKETS=",".join(markets), BOT_LANGUAGE="en")  # READY is the English banner
        env.pop("CYCLE_SECONDS", None)
        started = time.perf_counter()
        child = subprocess.Popen(autotrader() + ["run"], cwd=tmp, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        poll = []
        watcher = threading.Thread(target=_first_request, args=(upbit, started, poll), daemon=True)
        watcher.start()
        try:
            for line in child.stdout:
                if READY in line:
                    break
            else:
                raise RuntimeError("autotrader run exited before it was ready")
            ready = time.perf_counter() - started
            status = Path(f"/proc/{child.pid}/status").read_text()
        finally:
            child.terminate()
            child.communicate(timeout=30)
        watcher.join(timeout=5)
    memory = {k: int(v.split()[0]) / 1024 for k, v in (line.split(":", 1) for line in status.splitlines())
              if k in ("VmRSS", "VmHWM")}
    return {"poll": poll[0] if poll else float("nan"), "ready": ready, "rss": memory["VmRSS"], "hwm": memory["VmHWM"]}


def _first_request(upbit: FakeUpbit, started: float, out: list) -> None:
    deadline = started + 60
    while time.perf_counter() < deadline:
        if any(r.startswith("/v1/candles/") for r in list(upbit.requests)):
            out.append(time.perf_counter() - started)
            return
        time.sleep(0.002)


def training_figures() -> list[Figure]:
    """Training the 4 default markets on the bundled Binance history, then on its newer half."""
    full = BUNDLED_DATA_DIR / "binance-1h"
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "half"
        halves = {}
        for path in sorted(full.glob("*_1h.csv*")):
            candles = load_candle_csv(path)
            halves[path.name.split("_", 1)[0]] = candles.iloc[len(candles) // 2:]
        write_candle_dir(halves, half)
        rows = {}
        for label, data in (("train_4_markets", full), ("train_4_markets_half_data", half)):
            rows[label] = sum(len(load_candle_csv(p)) for p in sorted(data.glob("*_1h.csv*")))
            started = time.perf_counter()
            done = subprocess.run(autotrader() + ["train", "--data", str(data), "--out", str(Path(tmp) / label), "--quiet"],
                                  capture_output=True, text=True, cwd=tmp)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"autotrader train failed: {done.stderr.strip()[-500:]}")
            epochs = _epochs(Path(tmp) / label)
            out.append(Figure(label, (seconds,), "s", "< 600 s" if label == "train_4_markets" else "",
                              f"{rows[label]:,} candles, {epochs} LSTM epochs (early stopping)"))
    return out


def _epochs(model_dir: Path) -> int:
    import json

    return len(json.loads((model_dir / "global" / "model_metadata.json").read_text()).get("lstm_history", []))
