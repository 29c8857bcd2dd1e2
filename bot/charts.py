"""Pictures for /chart, /equity and `backtest --plot`: PNG bytes drawn with matplotlib (Agg, no display).

KRW axes carry thousands separators (never a 1e8 offset), dates are spaced so that they do not
overlap, and every mark has a legend. Candles follow the Korean convention: red rises, blue falls.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from core.service.reports import ChartData, EquityData  # noqa: E402

RISE, FALL = "tab:red", "tab:blue"
KRW_AXIS = FuncFormatter(lambda value, _: f"{value:,.0f}")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _krw(ax, label: str = "KRW") -> None:
    ax.yaxis.set_major_formatter(KRW_AXIS)
    ax.set_ylabel(label)


def chart_png(data: ChartData) -> bytes:
    return _png(chart_figure(data))


def chart_figure(data: ChartData):
    candles = data.candles
    fig, ax = plt.subplots(figsize=(10, 5))
    times = candles.index.to_pydatetime()
    width = (times[1] - times[0]) * 0.7 if len(times) > 1 else None
    up = (candles["close"] >= candles["open"]).to_numpy()
    colours = np.where(up, RISE, FALL)
    ax.vlines(times, candles["low"], candles["high"], color=colours, linewidth=0.8)
    ax.bar(times, (candles["close"] - candles["open"]).abs(), bottom=np.minimum(candles["open"], candles["close"]),
           width=width, color=colours)
    closes = candles["close"]
    for at, action in data.signals:
        if at in closes.index:
            ax.scatter([at], [closes[at]], marker="^" if action == "BUY" else "v", s=40,
                       color="tab:green" if action == "BUY" else "tab:orange", zorder=3)
    for at, side, price in data.fills:
        ax.scatter([at], [price], marker="o", s=70, facecolors="none",
                   edgecolors="black" if side == "bid" else "purple", linewidths=1.5, zorder=4)
    legend = [Patch(color=RISE, label="candle closed up (red rises)"),
              Patch(color=FALL, label="candle closed down (blue falls)"),
              Line2D([], [], marker="^", linestyle="", color="tab:green", label="model BUY"),
              Line2D([], [], marker="v", linestyle="", color="tab:orange", label="model SELL"),
              Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="black",
                     label="bot bought"),
              Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="purple",
                     label="bot sold")]
    ax.legend(handles=legend, loc="upper left", fontsize=8, ncol=2, framealpha=0.8)
    ax.set_title(f"{data.market}: last {len(candles)} candles (UTC), the model's signals and the bot's fills")
    _krw(ax, "price (KRW)")
    date_axis(ax)
    return fig


def equity_png(data: EquityData) -> bytes:
    return _png(equity_figure(data))


def equity_figure(data: EquityData):
    equity = np.asarray(data.equity_krw, dtype=np.float64)
    drawdown = (equity / np.maximum.accumulate(equity) - 1.0) * 100
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(data.times, equity, color="tab:blue", label="the bot's equity")
    if data.hold_krw:
        top.plot(data.hold_times, data.hold_krw, color="tab:gray", label="buy and hold (watched markets, equal weights)")
    by_time = dict(zip(data.times, equity))
    for side, marker, colour, label in (("bid", "^", "tab:green", "buy"), ("ask", "v", "tab:orange", "sale")):
        marks = [(t, _nearest(by_time, data.times, t)) for t, s in data.trades if s == side]
        if marks:
            top.scatter([t for t, _ in marks], [v for _, v in marks], marker=marker, color=colour, s=30, zorder=3,
                        label=label)
    top.legend(loc="upper left", fontsize=8)
    top.set_title("autotrader equity (UTC)")
    _krw(top, "equity (KRW)")
    bottom.fill_between(data.times, drawdown, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown (%)")
    date_axis(bottom)
    return fig


def _nearest(by_time: dict, times, at) -> float:
    """The equity at the first snapshot at or after `at` (the cycle that booked the fill)."""
    later = [t for t in times if t >= at]
    return by_time[later[0] if later else times[-1]]


def backtest_png(equity, hold, drawdown_of, title: str = "autotrader backtest") -> bytes:
    """A backtest's equity curve beside buy-and-hold, with both drawdowns."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(equity.index, equity.to_numpy(), label="strategy", color="tab:blue")
    top.plot(hold.index, hold.to_numpy(), label="buy and hold (equal weights)", color="tab:gray")
    top.set_title(title)
    top.legend(loc="upper left")
    _krw(top, "equity (KRW)")
    for curve, color in ((equity, "tab:blue"), (hold, "tab:gray")):
        dd = drawdown_of(curve) * 100
        bottom.fill_between(dd.index, dd.to_numpy(), 0, color=color, alpha=0.35)
    bottom.set_ylabel("drawdown (%)")
    date_axis(bottom)
    return _png(fig)
