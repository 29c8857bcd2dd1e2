"""The bot's small parts: message splitting, token redaction, scheduling, the live signal feed."""
import logging
from datetime import datetime, timezone

from bot.dispatcher import TELEGRAM_LIMIT, alert_html, backoff_seconds, split_text
from bot.redact import RedactSecrets
from core.runtime.runtime import first_close as first_run
from core.trading.feeds import LiveFeed
from core.upbit.quotation import UpbitQuotationClient
from core.upbit.source import UpbitCandleSource
from models.manager import MultiCoinModelManager
from tests.fakes.upbit_server import FakeUpbit


def test_long_messages_are_split_under_telegrams_limit_at_line_ends():
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(200))
    pieces = split_text(text)
    assert len(pieces) > 1 and all(len(p) <= TELEGRAM_LIMIT for p in pieces)
    assert "\n".join(pieces) == text
    assert split_text("y" * 9000) == ["y" * 4096, "y" * 4096, "y" * 808]
    from datetime import datetime, timezone

    from core.storage.outbox import Alert

    legacy = Alert(id=1, kind="emergency", name=None, params={}, market=None, text="a < b", priority=100, chat_id=1,
                   attempts=0, created_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert alert_html(legacy) == "<b>🚨 EMERGENCY</b>\na &lt; b"
    sold = Alert(id=2, kind="fill", name="sold", params={"side": "ask", "volume": 0.5, "price_krw": 1e6,
                                                         "funds_krw": 5e5, "fee_krw": 250.0}, market="KRW-BTC",
                 text=None, priority=30, chat_id=1, attempts=0, created_at=legacy.created_at)
    assert alert_html(sold) == "<b>Fill</b>\nSold 0.5 KRW-BTC at KRW 1,000,000: KRW 499,750 after fee"


def test_backoff_grows_and_is_capped():
    assert 0.5 <= backoff_seconds(0) <= 1.0 and 30 <= backoff_seconds(10) <= 60


def test_secrets_are_redacted_from_log_records_and_tracebacks(caplog):
    token = "123456:AAE-very-secret"
    logger = logging.getLogger("test.redact")
    redact = RedactSecrets([token, None, ""])
    record = logger.makeRecord("test.redact", logging.INFO, __file__, 1, "POST %s/getUpdates", (f"https://x/bot{token}",), None)
    assert redact.filter(record) and token not in record.getMessage() and "***" in record.getMessage()
    try:
        raise RuntimeError(f"failed calling https://x/bot{token}/sendMessage")
    except RuntimeError:
        import sys

        record = logger.makeRecord("test.redact", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    redact.filter(record)
    assert token not in record.exc_text


def test_cycles_run_a_few_seconds_after_each_candle_close():
    now = datetime(2026, 11, 24, 13, 59, 58, tzinfo=timezone.utc)
    assert first_run(now, 3600) == datetime(2026, 11, 24, 14, 0, 5, tzinfo=timezone.utc)
    assert first_run(datetime(2026, 11, 24, 14, 0, 0, tzinfo=timezone.utc), 3600).hour == 15


def test_live_feed_judges_each_new_closed_candle_once(btc):
    now = btc.index[-1].to_pydatetime()  # the last candle is still forming at this time
    with FakeUpbit({"KRW-BTC": btc}) as upbit:
        source = UpbitCandleSource(UpbitQuotationClient(upbit.url), "1h", 3600)
        feed = LiveFeed(source, MultiCoinModelManager(markets=["KRW-BTC"]), lambda: ["KRW-BTC", "KRW-DOGE"], 3600)
        inputs, errors = feed.inputs(now)
        signal = inputs["KRW-BTC"].signal
        assert signal.timestamp == btc.index[-2] and inputs["KRW-BTC"].price_krw == btc["close"].iloc[-2]
        assert signal.ok and "KRW-DOGE" in errors
        again, _ = feed.inputs(now)
        assert again == {}  # nothing new closed
        later, _ = feed.inputs(btc.index[-1].to_pydatetime() + (btc.index[-1] - btc.index[-2]))
        assert later["KRW-BTC"].signal.timestamp == btc.index[-1]


def test_a_job_cancelled_at_shutdown_is_not_logged_as_an_error():
    import asyncio
    import logging

    from bot.telegram_app import _not_a_cancelled_job

    def record(exc):
        return logging.LogRecord("apscheduler.executors.default", logging.ERROR, __file__, 1,
                                 'Job "model watch" raised an exception', (), (type(exc), exc, None))

    assert _not_a_cancelled_job(record(asyncio.CancelledError())) is False
    assert _not_a_cancelled_job(record(ValueError("a real failure"))) is True
