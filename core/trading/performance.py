"""How did a strategy do? Return and risk figures from an equity curve and closed trades."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

HOURS_PER_YEAR = 24 * 365


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 or not math.isfinite(den) else num / den


def performance(equity: pd.Series, trade_returns: Sequence[float], holding_hours: Sequence[float],
                exposure: float, fees_krw: float, interval_seconds: int = 3600, fee_rate: float = 0.0005) -> dict:
    """`equity`: KRW per tick, indexed by time. Sharpe and Sortino are annualised from tick returns;
    turnover is the KRW traded (the fees' base) per year, in multiples of the average equity."""
    values = equity.to_numpy(dtype=np.float64)
    returns = np.diff(values) / values[:-1] if len(values) > 1 else np.zeros(0)
    periods_per_year = HOURS_PER_YEAR * 3600 / interval_seconds
    years = max((equity.index[-1] - equity.index[0]).total_seconds() / (365 * 86400), 1e-9)
    total = values[-1] / values[0] - 1.0
    cagr = (values[-1] / values[0]) ** (1 / years) - 1.0 if values[-1] > 0 else -1.0
    peak = np.maximum.accumulate(values)
    drawdown = values / peak - 1.0
    max_dd = float(drawdown.min()) if len(drawdown) else 0.0
    std = returns.std(ddof=1) if len(returns) > 1 else 0.0
    downside = returns[returns < 0]
    down_std = math.sqrt((downside ** 2).sum() / len(returns)) if len(returns) else 0.0
    wins = [r for r in trade_returns if r > 0]
    losses = [r for r in trade_returns if r <= 0]
    return {
        "total_return": float(total),
        "cagr": float(cagr),
        "sharpe": _ratio(returns.mean() * math.sqrt(periods_per_year), std) if len(returns) > 1 else None,
        "sortino": _ratio(returns.mean() * math.sqrt(periods_per_year), down_std) if len(returns) > 1 else None,
        "max_drawdown": max_dd,
        "calmar": _ratio(cagr, -max_dd) if max_dd < 0 else None,
        "win_rate": len(wins) / len(trade_returns) if trade_returns else None,
        "profit_factor": _ratio(sum(wins), -sum(losses)) if losses else None,
        "expectancy": float(np.mean(trade_returns)) if trade_returns else None,  # mean trade return after fees
        "trades": len(trade_returns),
        "average_holding_hours": float(np.mean(holding_hours)) if holding_hours else None,
        "exposure": float(exposure),
        "turnover": _ratio(fees_krw / fee_rate, float(values.mean()) * years) if fee_rate and len(values) else None,
        "fees_krw": float(fees_krw),
        "start_equity_krw": float(values[0]),
        "end_equity_krw": float(values[-1]),
    }


def drawdown_series(equity: pd.Series) -> pd.Series:
    return equity / equity.cummax() - 1.0
