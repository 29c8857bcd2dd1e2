from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

# The suite reads English replies with UTC times unless a test asks for Korean (tests/test_i18n.py);
# a subprocess inherits these, so `autotrader` run by a test speaks the same.
os.environ["BOT_LANGUAGE"] = "en"
os.environ["DISPLAY_TIMEZONE"] = "UTC"

from core.data.candles import load_candle_csv, write_candle_csv  # noqa: E402
from core.display import set_display_zone  # noqa: E402
from core.i18n import set_default_language  # noqa: E402

set_default_language("en")
set_display_zone("UTC")

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


def _postgres_server() -> str | None:
    """The maintenance-database URL of the test PostgreSQL server (.ci/run starts one)."""
    return os.environ.get("AUTOTRADER_TEST_POSTGRES") or None


@contextmanager
def fresh_database(kind: str, directory: Path):
    """The URL of an empty database: a SQLite file in `directory`, or a new database on the PostgreSQL
    server, dropped afterwards. Without a server PostgreSQL is skipped locally; in CI (CI=true) that fails."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'test.db'}"
        return
    server = _postgres_server()
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs a PostgreSQL server: AUTOTRADER_TEST_POSTGRES is not set (see .ci/run)")
        pytest.skip("no PostgreSQL server (set AUTOTRADER_TEST_POSTGRES, see .ci/postgres.sh)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


DATABASE_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(params=DATABASE_KINDS)
def db_url(request, tmp_path) -> str:
    """An empty database of each kind; every test that uses one runs on both."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def upbit():
    """A fake Upbit on 127.0.0.1 (quotation and exchange API) whose book fills every market order at
    LIVE_PRICE; yields (server, book)."""
    from tests.fakes.upbit_exchange import LIVE_PRICE, LIVE_START_KRW, FakeExchangeBook
    from tests.fakes.upbit_server import FakeUpbit

    book = FakeExchangeBook(lambda market: LIVE_PRICE, krw=LIVE_START_KRW, hang_seconds=0.6)
    with FakeUpbit({}, exchange=book) as server:
        yield server, book


@pytest.fixture(scope="session")
def short_data(tmp_path_factory) -> Path:
    """The last 450 real Upbit KRW-BTC hours: 150 of warm-up, then 300 candles to trade (30 s at speed 10)."""
    out = tmp_path_factory.mktemp("tg-data")
    write_candle_csv(load_candle_csv(DATA / "upbit-1h" / "KRW-BTC_1h.csv").iloc[-450:], out / "KRW-BTC_1h.csv")
    return out


@pytest.fixture
def db(db_url):
    """An open engine on a fresh database of each kind (SQLite, and PostgreSQL when configured)."""
    from core.storage.database import open_database

    engine = open_database(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    """SQLite only, for tests that run a real trainer (the registry's SQL is tested on both kinds elsewhere)."""
    from core.storage.database import open_database

    engine = open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    yield engine
    engine.dispose()
