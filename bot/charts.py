"""Pictures for /chart and /equity: PNG bytes drawn with matplotlib (Agg, no display needed)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from core.reports import ChartData, EquityData  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def chart_png(data: ChartData) -> bytes:
    candles = data.candles
    fig, ax = plt.subplots(figsize=(10, 5))
    times = candles.index.to_pydatetime()
    width = (times[1] - times[0]) * 0.7 if len(times) > 1 else None
    up = (candles["close"] >= candles["open"]).to_numpy()
    ax.vlines(times, candles["low"], candles["high"], color=np.where(up, "tab:red", "tab:blue"), linewidth=0.8)
    ax.bar(times, (candles["close"] - candles["open"]).abs(), bottom=np.minimum(candles["open"], candles["close"]),
           width=width, color=np.where(up, "tab:red", "tab:blue"))  # Korean convention: red rises, blue falls
    closes = candles["close"]
    for at, action in data.signals:
        if at in closes.index:
            ax.scatter([at], [closes[at]], marker="^" if action == "BUY" else "v", s=40,
                       color="tab:green" if action == "BUY" else "tab:orange", zorder=3)
    for at, side, price in data.fills:
        ax.scatter([at], [price], marker="o", s=70, facecolors="none",
                   edgecolors="black" if side == "bid" else "purple", linewidths=1.5, zorder=4)
    ax.set_title(f"{data.market}: model signals (triangles) and the bot's fills (circles: black buy, purple sell)")
    ax.set_ylabel("KRW")
    return _png(fig)


def equity_png(data: EquityData) -> bytes:
    equity = np.asarray(data.equity_krw)
    drawdown = (equity / np.maximum.accumulate(equity) - 1.0) * 100
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(data.times, equity, color="tab:blue")
    top.set_ylabel("equity (KRW)")
    top.set_title("autotrader equity")
    bottom.fill_between(data.times, drawdown, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown (%)")
    return _png(fig)
