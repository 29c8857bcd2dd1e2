"""The benchmark's synthetic markets are valid candles with the real data's character."""
import numpy as np

from bench.synthetic import real_krw_candles, resampled_markets
from core.data.candles import candles_from_records


def test_resampled_markets_are_valid_candles_on_one_clock_with_real_returns():
    markets = resampled_markets(6, 500, seed=4)
    assert len(markets) == 6 and len({tuple(c.index) for c in markets.values()}) == 1
    real = np.diff(np.log(real_krw_candles(["KRW-BTC"], start="2022-01-01")["KRW-BTC"]["close"].to_numpy()))
    for candles in markets.values():
        checked = candles_from_records(candles)  # the loader's checks: OHLC consistent, positive, ordered
        assert len(checked) == 500
        returns = np.diff(np.log(candles["close"].to_numpy()))
        assert 0.2 < returns.std() / real.std() < 5  # hourly moves of crypto size, not noise or a flat line
    assert resampled_markets(2, 100, seed=4)["KRW-S000"].equals(resampled_markets(2, 100, seed=4)["KRW-S000"])
