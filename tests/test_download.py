"""`download` and the Upbit candle source against a local fake of Upbit's quotation API."""
from datetime import datetime, timezone

import pandas as pd
import pytest

from core.data.candles import load_candle_csv
from core.upbit.download import download_market
from core.upbit.errors import UpbitRateLimitError, UpbitRequestError, UpbitServerError
from core.upbit.quotation import UpbitQuotationClient
from core.upbit.source import UpbitCandleSource
from tests.fakes.upbit_server import FakeUpbit

NOW = pd.Timestamp("2025-10-31T23:30:00Z")  # the 23:00 candle is still forming


@pytest.fixture
def fake(btc):
    with FakeUpbit({"KRW-BTC": btc}, now=NOW) as server:
        yield server


def client(fake, **kw):
    return UpbitQuotationClient(fake.url, timeout=2, sleep=lambda s: None, **kw)


def test_download_pages_and_keeps_closed_candles_only(fake, btc, tmp_path):
    since = datetime(2025, 9, 1, tzinfo=timezone.utc)
    result = download_market(client(fake), "KRW-BTC", "1h", 3600, since, tmp_path, now=NOW.to_pydatetime())
    saved = load_candle_csv(tmp_path / "KRW-BTC_1h.csv")
    expected = btc[(btc.index >= since) & (btc.index < pd.Timestamp("2025-10-31T23:00Z"))]
    assert (saved.index == expected.index).all()
    pd.testing.assert_frame_equal(saved, expected, check_freq=False, rtol=1e-9)
    assert result.new_candles == len(expected) and len(fake.requests) >= len(expected) // 200
    assert all("count=200" in r for r in fake.requests)


def test_download_resumes_after_an_interruption(fake, btc, tmp_path):
    since = datetime(2025, 9, 1, tzinfo=timezone.utc)
    fake.fail_after = 2
    with pytest.raises(UpbitServerError, match="HTTP 500"):
        download_market(client(fake, max_retries=1), "KRW-BTC", "1h", 3600, since, tmp_path, now=NOW.to_pydatetime())
    partial = tmp_path / "KRW-BTC_1h.csv.partial"
    assert partial.exists() and not (tmp_path / "KRW-BTC_1h.csv").exists()
    fake.fail_after = None
    done_before = len(fake.requests)
    download_market(client(fake), "KRW-BTC", "1h", 3600, since, tmp_path, now=NOW.to_pydatetime())
    assert not partial.exists()
    saved = load_candle_csv(tmp_path / "KRW-BTC_1h.csv")
    assert saved.index[0] == pd.Timestamp(since) and saved.index[-1] == pd.Timestamp("2025-10-31T22:00Z")
    # the resumed run asked only for what it lacked: no page of the first run was fetched again
    resumed = fake.requests[done_before:]
    assert len(resumed) < len(saved) // 200 + 1


def test_second_download_only_fetches_new_candles(fake, btc, tmp_path):
    since = datetime(2025, 10, 20, tzinfo=timezone.utc)
    download_market(client(fake), "KRW-BTC", "1h", 3600, since, tmp_path, now=datetime(2025, 10, 30, tzinfo=timezone.utc))
    again = download_market(client(fake), "KRW-BTC", "1h", 3600, since, tmp_path, now=NOW.to_pydatetime())
    assert again.new_candles == 47  # 30 Oct 00:00 .. 31 Oct 22:00
    assert load_candle_csv(again.path).index.is_unique


def test_rate_limit_is_backed_off_then_retried(fake):
    sleeps = []
    fake.faults += [429, 429]
    c = UpbitQuotationClient(fake.url, timeout=2, sleep=sleeps.append)
    page = c.candles_page("KRW-BTC", "1h")
    assert len(page) == 200 and len(sleeps) == 2
    fake.faults += [429] * 10
    with pytest.raises(UpbitRateLimitError, match="429"):
        UpbitQuotationClient(fake.url, timeout=2, max_retries=2, sleep=lambda s: None).candles_page("KRW-BTC", "1h")


def test_unknown_market_is_a_typed_error(fake):
    with pytest.raises(UpbitRequestError, match="404"):
        client(fake).candles_page("KRW-NOPE", "1h")


def test_unreachable_server_is_a_typed_error():
    from core.upbit.errors import UpbitNetworkError

    c = UpbitQuotationClient("http://127.0.0.1:9", timeout=0.5, max_retries=0)
    with pytest.raises(UpbitNetworkError, match="unreachable"):
        c.candles_page("KRW-BTC", "1h")


def test_candle_source_gives_closed_candles_across_pages(fake, btc):
    source = UpbitCandleSource(client(fake), "1h", 3600)
    candles = source.closed_candles("KRW-BTC", 450, NOW.to_pydatetime())
    assert len(candles) == 450
    assert candles.index[-1] == pd.Timestamp("2025-10-31T22:00Z")
    pd.testing.assert_frame_equal(candles, btc[btc.index <= pd.Timestamp("2025-10-31T22:00Z")].iloc[-450:], check_freq=False)


def test_download_all_krw_lists_upbits_krw_markets_and_fetches_each(btc, tmp_path, capsys):
    from bot.cli import main

    eth = btc * 0.03
    with FakeUpbit({"KRW-BTC": btc, "KRW-ETH": eth}, now=NOW) as server:
        args = ["download", "--all-krw", "--since", "2025-10-30", "--out", str(tmp_path), "--api-url", server.url,
                "--quiet"]
        assert main(args) == 0
        assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["KRW-BTC_1h.csv", "KRW-ETH_1h.csv"]
        assert "Upbit lists 2 KRW markets" in capsys.readouterr().out
        assert any(r.startswith("/v1/market/all") for r in server.requests)
        # a listed market whose candles fail is said and skipped; the others are fetched; run again to resume
        server.listed_extra = ["KRW-GONE", "BTC-ETH"]
        assert main(args) == 2
        captured = capsys.readouterr()
        assert "KRW-GONE: not downloaded" in captured.err and "1 of 3 markets not downloaded" in captured.err
        assert "KRW-BTC: 0 new" in captured.out  # already complete: nothing fetched twice
        assert main(["download", "--all-krw", "--markets", "KRW-BTC", "--since", "2025-10-30", "--out",
                     str(tmp_path), "--api-url", server.url]) == 2
