import gzip

import numpy as np
import pandas as pd
import pytest

from core.data.candles import (
    CandleDataError,
    candles_from_records,
    find_gaps,
    load_candle_csv,
    resolve_candle_file,
    write_candle_csv,
)

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = ["2025-01-01T00:00:00Z,100,110,90,105,3", "2025-01-01T01:00:00Z,105,112,100,110,4"]


def write(tmp_path, rows, header=HEADER, name="KRW-BTC_1h.csv"):
    path = tmp_path / name
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def test_valid_file_loads_with_value_estimated(tmp_path):
    frame = load_candle_csv(write(tmp_path, GOOD))
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "value"]
    assert str(frame.index.tz) == "UTC"
    assert frame["value"].tolist() == [105 * 3, 110 * 4]


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ("2025-01-01T02:00:00Z,110,115,100,nan,1", "close 'nan' is not a finite number"),
        ("2025-01-01T02:00:00Z,110,115,100,,1", "close '' is not a finite number"),
        ("yesterday,110,115,100,111,1", "timestamp 'yesterday' is not ISO-8601"),
        ("2025-01-01T02:00:00Z,110,115,100,0,1", "close must be positive"),
        ("2025-01-01T02:00:00Z,110,115,100,111,-1", "volume must not be negative"),
        ("2025-01-01T02:00:00Z,110,105,100,111,1", "high/low do not enclose open and close"),
        ("2025-01-01T01:00:00Z,110,115,100,111,1", "duplicate timestamp"),
        ("2024-12-31T23:00:00Z,110,115,100,111,1", "not sorted"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path, bad_row, message):
    path = write(tmp_path, GOOD + [bad_row])
    with pytest.raises(CandleDataError) as err:
        load_candle_csv(path)
    assert str(path) in str(err.value) and "line 4" in str(err.value)
    assert message in str(err.value)


def test_missing_column_and_empty_file(tmp_path):
    with pytest.raises(CandleDataError, match="missing column"):
        load_candle_csv(write(tmp_path, ["2025-01-01T00:00:00Z,1,1,1,1"], header="timestamp,open,high,low,close\n"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CandleDataError, match="not a readable CSV"):
        load_candle_csv(empty)
    with pytest.raises(CandleDataError, match="no such file"):
        load_candle_csv(tmp_path / "absent.csv")


def test_gaps_are_reported(tmp_path):
    rows = GOOD + ["2025-01-01T05:00:00Z,110,115,100,111,1"]
    gaps = find_gaps(load_candle_csv(write(tmp_path, rows)), 3600)
    assert len(gaps) == 1 and gaps[0].missing == 3
    assert "3 candle(s) missing after 2025-01-01T01:00:00" in str(gaps[0])


def test_real_bundled_file_has_its_known_hole(btc):
    gaps = find_gaps(btc, 3600)
    assert [g.missing for g in gaps] == [5]


def test_gzip_and_round_trip(tmp_path, btc):
    path = tmp_path / "KRW-BTC_1h.csv"
    write_candle_csv(btc.iloc[:50], path)
    gz = tmp_path / "KRW-ETH_1h.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    again = load_candle_csv(gz)
    np.testing.assert_allclose(again.to_numpy(), btc.iloc[:50].to_numpy(), rtol=1e-9)
    assert (again.index == btc.index[:50]).all()
    assert resolve_candle_file(tmp_path, "KRW-ETH", "1h") == gz


def test_same_base_fallback_is_explicit(tmp_path, btc):
    write_candle_csv(btc.iloc[:5], tmp_path / "USDT-BTC_1h.csv")
    with pytest.raises(CandleDataError, match="no candle file for KRW-BTC"):
        resolve_candle_file(tmp_path, "KRW-BTC", "1h")
    assert resolve_candle_file(tmp_path, "KRW-BTC", "1h", same_base_fallback=True).name == "USDT-BTC_1h.csv"


def test_records_accept_upbit_names():
    rows = [
        {"candle_date_time_utc": "2025-01-01T00:00:00Z", "opening_price": 1, "high_price": 2, "low_price": 1,
         "trade_price": 2, "candle_acc_trade_volume": 5, "candle_acc_trade_price": 9},
    ]
    frame = candles_from_records(rows)
    assert frame["value"].iloc[0] == 9 and frame.index[0] == pd.Timestamp("2025-01-01", tz="UTC")
    with pytest.raises(CandleDataError, match="row 0: close"):
        candles_from_records([rows[0] | {"trade_price": -1}])
