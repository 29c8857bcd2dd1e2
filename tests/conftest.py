from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from core.candles import load_candle_csv, write_candle_csv

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def btc() -> pd.DataFrame:
    """Real Upbit KRW-BTC hourly candles (1,544 rows, one 5-candle hole)."""
    return load_candle_csv(DATA / "upbit-1h" / "KRW-BTC_1h.csv")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """Two markets of real Binance candles, 7,000 hours each, named as KRW markets."""
    out = tmp_path_factory.mktemp("data")
    for coin in ("BTC", "ETH"):
        frame = load_candle_csv(DATA / "binance-1h" / f"USDT-{coin}_1h.csv.gz").iloc[-7000:]
        write_candle_csv(frame, out / f"KRW-{coin}_1h.csv")
    return out


@pytest.fixture(scope="session")
def tiny_models(small_dataset, tmp_path_factory) -> Path:
    """A real (small, quick) training run: global model, maybe per-market heads, baselines."""
    from models.lstm import EncoderConfig
    from models.training import TrainConfig, train_models

    out = tmp_path_factory.mktemp("models")
    config = TrainConfig(encoder=EncoderConfig(hidden_size=16), epochs=1, samples_per_epoch=2000, head_rounds=30)
    train_models(small_dataset, ["KRW-BTC", "KRW-ETH"], out, config=config, progress=False)
    return out


@pytest.fixture
def model_copy(tiny_models, tmp_path) -> Path:
    """A disposable copy of the tiny models (for tests that damage files)."""
    target = tmp_path / "models"
    shutil.copytree(tiny_models, target)
    return target
