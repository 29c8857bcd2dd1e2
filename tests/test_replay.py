"""`run --replay`: the agent over the bundled real candles with the shipped models, and proof that it
decides exactly as a backtest over the same candles does."""
import pytest
from sqlalchemy import select

from core.service.replay import open_replay, pacer, replay_database
from core.storage.books import load_books, stored_fills
from core.storage.schema import equity_snapshots, signals
from core.trading.backtest import run_backtest
from core.trading.types import RiskSettings
from models.manager import MultiCoinModelManager
from tests.conftest import DATA, DATABASE_KINDS, fresh_database
from tests.test_agent import count
from tests.test_cli import run_cli

MARKETS = ["KRW-BTC", "KRW-ETH"]
# a lower bar than the shipped 0.5% margin, so that two months of two markets make a few trades
LENIENT = RiskSettings(entry_margin=0.0025)


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def replayed(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp("replay")) as url:
        db = replay_database(url)
        replay = open_replay(DATA / "upbit-1h", MARKETS, MultiCoinModelManager(markets=MARKETS), db, defaults=LENIENT)
        result = replay.run()
        yield replay, result, db
        db.dispose()


def test_backtest_and_replay_make_the_same_decisions(replayed):
    replay, result, db = replayed
    backtest = run_backtest(DATA / "upbit-1h", MARKETS, MultiCoinModelManager(markets=MARKETS), settings=LENIENT)
    assert result.decisions() == backtest.decisions()
    assert result.metrics == backtest.metrics
    backtest_fills = [(s.fill.market, s.fill.side, s.fill.price_krw, s.fill.volume, s.fill.at)
                      for s in backtest.steps if s.fill is not None]
    stored = [(f.market, f.side, f.price_krw, pytest.approx(f.volume), f.at) for f, _ in stored_fills(db)]
    assert len(backtest_fills) >= 2 and stored == backtest_fills


def test_replay_journal_holds_every_signal_and_cycle(replayed):
    replay, result, db = replayed
    judged = [s for s in result.steps if s.signal is not None]
    assert count(db, signals) == len(judged) > 1000
    assert count(db, equity_snapshots) == len(replay.ticks)
    with db.connect() as conn:
        last = conn.execute(select(equity_snapshots.c.equity_krw).order_by(equity_snapshots.c.id.desc())).first()
    assert float(last[0]) == pytest.approx(result.equity.iloc[-1])
    books = load_books(db)
    assert books.cash_krw == pytest.approx(replay.agent.portfolio.cash_krw)
    assert len(books.trades) == result.metrics["trades"]


def test_replay_refuses_a_database_with_history(replayed, tmp_path):
    _, _, db = replayed
    with pytest.raises(ValueError, match="already holds .* a replay needs an empty database"):
        replay_database(str(db.url))


def test_pacer_holds_each_tick_to_the_speed():
    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    wait = pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for i in range(3):
        wait(i)
    assert slept == pytest.approx([0.25, 0.25, 0.25])
    pacer(0, clock=lambda: 0.0, sleep=sleep)(5)
    assert len(slept) == 3


def test_run_replay_cli_answers_commands_and_ends_with_a_summary(db_url):
    db = db_url
    result = run_cli("run", "--replay", "--speed", "0", "--markets", "KRW-BTC", "--db", db,
                     "--set", "buy_threshold=0.42", input="/status\n/threshold buy 7\n/set cooldown_hours 12\n/settings\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Replaying KRW-BTC" in out and "Mode: paper (replay)" in out
    assert "Error: buy_threshold must be between 0 and 1, got 7.0; usage: /threshold" in out
    assert "cooldown_hours set to 12 h (was 0 h)" in out and "buy_threshold = 0.42" in out
    assert "System: autotrader started: paper (replay) mode, KRW-BTC" in out and "Replay finished" in out
    assert "| Total return |" in out and "| Largest drawdown |" in out and "total_return" not in out
    assert "Settings: the built-in defaults except buy_threshold=0.42" in out
    assert "Changed during the run: " in out and "by console: cooldown_hours=12.0" in out
    assert ("Open at the end (valued at each market's last close" in out
            or "No position was open at the end" in out)
    again = run_cli("run", "--replay", "--speed", "0", "--markets", "KRW-BTC", "--db", db)
    assert again.returncode == 2 and "needs an empty database" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["run", "--db", "sqlite:///x.db"], "--db is for replays"),
    (["run", "--replay", "--speed", "-1"], "--speed: expected candles per second >= 0"),
    (["run", "--replay", "/nonexistent"], "--replay /nonexistent is not a directory"),
    (["run", "--replay", "--set", "paused=yes"], "--set: unknown parameter 'paused'"),
])
def test_run_bad_usage(args, message, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def judged(url) -> int:
    from sqlalchemy import create_engine, func, inspect

    engine = create_engine(url)
    try:
        if "signals" not in inspect(engine).get_table_names():
            return 0
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(signals)).scalar()
    finally:
        engine.dispose()


def test_run_without_a_token_is_the_console_agent_on_live_candles(tmp_path, db_url):
    """Paper trading on candles from a local Upbit, commands from stdin, SIGTERM stops it cleanly."""
    import os
    import signal
    import subprocess
    import time

    from core.data.candles import load_candle_csv
    from tests.fakes.upbit_server import FakeUpbit
    from tests.test_telegram_e2e import autotrader

    btc = load_candle_csv(DATA / "upbit-1h" / "KRW-BTC_1h.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETS", "TELEGRAM_", "AUTOTRADER_"))}
    with FakeUpbit({"KRW-BTC": btc}) as upbit:
        env.update({"DATABASE_URL": db_url, "CYCLE_SECONDS": "1", "MARKETS": "KRW-BTC",
                    "UPBIT_API_URL": upbit.url})
        agent = subprocess.Popen([autotrader(), "run"], env=env, cwd=tmp_path, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        agent.stdin.write("/threshold buy 0.6\n")
        agent.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not judged(db_url):
            time.sleep(0.3)
        agent.stdin.write("/signals\n")
        agent.stdin.flush()
        time.sleep(2)
        agent.send_signal(signal.SIGTERM)
        out, _ = agent.communicate(timeout=60)
    assert agent.returncode == 0, out
    assert "paper trading KRW-BTC" in out and "buy_threshold set to 0.60 (was 0.55)" in out
    assert f"KRW-BTC @ {btc.index[-1]:%Y-%m-%d %H:%M} UTC" in out  # the newest closed candle was judged
    assert "System: autotrader started" in out and "System: autotrader stopped" in out
