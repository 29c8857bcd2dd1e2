"""How did it do over all the test periods? Folds stitched into one out-of-sample record.

Each fold's test period was simulated from the same starting equity; the stitched curve chains their
returns, so positions do not carry across folds (each quarter starts flat and rebalanced, buy-and-hold
too). Figures are computed on the stitched curves: overall, per fold and per period of the market's
history (2019; the 2020-21 bull market; the 2022 bear market; 2023-25), and checked against the
product's targets.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.research.context import column_names
from core.research.folds import Fold
from core.trading.backtest import BacktestResult
from core.trading.performance import performance

PERIODS = {"2019": ("2019-01-01", "2020-01-01"), "2020-21": ("2020-01-01", "2022-01-01"),
           "2022": ("2022-01-01", "2023-01-01"), "2023-25": ("2023-01-01", "2026-01-01")}


@dataclass
class FoldRun:
    fold: Fold
    chosen: dict
    auc: dict
    auc_by_label: list
    strategy: BacktestResult
    trend: BacktestResult
    seconds: float
    model: dict = None  # digests of what was traded (core.research.walkforward.model_record)


def chain(curves: Sequence[pd.Series]) -> pd.Series:
    """Consecutive equity curves, each scaled to start where the previous one ended."""
    parts, level = [], None
    for curve in curves:
        scale = 1.0 if level is None else level / curve.iloc[0]
        parts.append(curve * scale)
        level = float(parts[-1].iloc[-1])
    return pd.concat(parts)


@dataclass(frozen=True)
class Record:
    """One strategy's stitched curve and its trades, for figures over any span."""

    curve: pd.Series
    trades: list  # (closed_at, return, hours held)
    exposed: pd.Series  # per tick: invested or not
    fees_ratio: pd.Series  # fees per tick as a share of that tick's equity

    def figures(self, start=None, end=None, interval_seconds: int = 3600) -> dict:
        mask = np.ones(len(self.curve), dtype=bool)
        if start is not None:
            mask &= self.curve.index >= pd.Timestamp(start, tz="UTC")
        if end is not None:
            mask &= self.curve.index < pd.Timestamp(end, tz="UTC")
        curve = self.curve[mask]
        if len(curve) < 2:
            return {}
        trades = [t for t in self.trades if (start is None or t[0] >= pd.Timestamp(start, tz="UTC"))
                  and (end is None or t[0] < pd.Timestamp(end, tz="UTC"))]
        fees = float((self.fees_ratio[mask] * curve).sum())
        return performance(curve, [t[1] for t in trades], [t[2] for t in trades], float(self.exposed[mask].mean()),
                           fees, interval_seconds)


def record(results: Sequence[BacktestResult], which: str = "equity") -> Record:
    """The stitched record of the strategy (`equity`) or of buy-and-hold (`hold`) over the folds."""
    curves = [r.equity if which == "equity" else r.buy_and_hold for r in results]
    curve = chain(curves)
    trades, exposed, fees = [], [], []
    for r in results:
        if which == "equity":
            trades += [(pd.Timestamp(s.trade.closed_at), s.trade.return_ratio,
                        (s.trade.closed_at - s.trade.opened_at).total_seconds() / 3600)
                       for s in r.steps if s.trade is not None]
            exposed.append(r.invested)
            fees.append(r.fees / r.equity)
        else:
            exposed.append(pd.Series(True, index=r.buy_and_hold.index))
            fee = np.zeros(len(r.buy_and_hold))
            fee[0] = r.buy_and_hold_metrics["fees_krw"] / float(r.buy_and_hold.iloc[0])
            fees.append(pd.Series(fee, index=r.buy_and_hold.index))
    return Record(curve, trades, pd.concat(exposed), pd.concat(fees))


def fold_row(run: FoldRun) -> dict:
    f = run.fold
    keep = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor", "expectancy", "exposure",
            "turnover", "fees_krw")
    pick = (lambda m: {k: m.get(k) for k in keep})
    return {
        "index": f.index, "test": [f.test_start.isoformat(), f.test_end.isoformat()],
        "validation": [f.plan.validation_start.isoformat(), f.test_start.isoformat()],
        "head_train_from": f.plan.head_start.isoformat(), "lstm_group": f.group, "chosen": run.chosen,
        "auc": run.auc, "strategy": pick(run.strategy.metrics), "buy_and_hold": pick(run.strategy.buy_and_hold_metrics),
        "trend": pick(run.trend.metrics), "cash": {"total_return": 0.0, "sharpe": None, "max_drawdown": 0.0,
                                                   "trades": 0, "exposure": 0.0},
        "model": run.model, "seconds": round(run.seconds, 1),
    }


def targets(strategy: dict, hold: dict, trend: dict, auc: dict) -> dict:
    """The product's targets for the shipped defaults, each with the figure reached."""
    def check(ok, value, goal):
        return {"met": bool(ok), "value": value, "goal": goal}  # met None: not measured by this run

    sharpe = strategy.get("sharpe") or 0.0
    return {
        "trades >= 300": check(strategy["trades"] >= 300, strategy["trades"], 300),
        "profit factor >= 1.15": check((strategy.get("profit_factor") or 0) >= 1.15, strategy.get("profit_factor"), 1.15),
        "Sharpe above buy-and-hold's": check(sharpe > (hold.get("sharpe") or 0), sharpe, hold.get("sharpe")),
        "Sharpe above the trend rule's": check(sharpe > (trend.get("sharpe") or 0), sharpe, trend.get("sharpe")),
        "max drawdown at most half of buy-and-hold's": check(strategy["max_drawdown"] >= hold["max_drawdown"] / 2,
                                                             strategy["max_drawdown"], hold["max_drawdown"] / 2),
        "exposure between 10% and 70%": check(0.10 <= strategy["exposure"] <= 0.70, strategy["exposure"], [0.10, 0.70]),
        # Every fold trains the shipped recipe itself (same features, labels and hybrid), so there is no
        # other model on these folds to be above: the target is reported as not measured, never as met.
        "mean AUC above the current model's on the same folds": {
            "met": None, "value": auc, "goal": "not measured: every fold trains the current recipe itself"},
    }


def summarise(runs: Sequence[FoldRun], config, markets, data_dir: Path, train_dir: Path) -> dict:
    strategy = record([r.strategy for r in runs])
    hold = record([r.strategy for r in runs], "hold")
    trend = record([r.trend for r in runs])
    overall = {"strategy": strategy.figures(), "buy_and_hold": hold.figures(), "trend": trend.figures(),
               "cash": {"total_return": 0.0, "sharpe": None, "max_drawdown": 0.0, "trades": 0, "exposure": 0.0}}
    aucs = [r.auc for r in runs if r.auc.get("buy") is not None]
    auc = {"buy": float(np.mean([a["buy"] for a in aucs])) if aucs else None,
           "sell": float(np.mean([a["sell"] for a in aucs])) if aucs else None, "folds": len(aucs)}
    periods = {name: {"strategy": strategy.figures(a, b), "buy_and_hold": hold.figures(a, b), "trend": trend.figures(a, b)}
               for name, (a, b) in PERIODS.items()}
    daily = lambda rec: rec.curve.resample("1D").last().dropna()  # noqa: E731 - the plot needs days, not hours
    curves = {"times": [t.isoformat() for t in daily(strategy).index], "strategy": daily(strategy).tolist(),
              "buy_and_hold": daily(hold).reindex(daily(strategy).index).ffill().tolist(),
              "trend": daily(trend).reindex(daily(strategy).index).ffill().tolist()}
    return {
        "config": {"data": str(data_dir), "train_data": str(train_dir), "markets": list(markets),
                   "start": config.start.isoformat(), "test_months": config.test_months,
                   "validation_months": config.validation_months, "head_months": config.head_months,
                   "window": config.window, "train_months": config.train_months if config.window == "rolling" else None,
                   "lstm_every": config.lstm_every, "labels": [s.to_dict() for s in config.labels],
                   "min_exposure": config.min_exposure, "seed": config.train.seed, "slippage": config.slippage,
                   "calibration": config.train.calibration,
                   "context": list(column_names(config.context)) if config.context else []},
        "folds": [fold_row(r) for r in runs],
        "overall": {**overall["strategy"], "auc": auc},
        "baselines": {k: overall[k] for k in ("buy_and_hold", "trend", "cash")},
        "periods": periods,
        "curves": curves,
        "targets": targets(overall["strategy"], overall["buy_and_hold"], overall["trend"], auc),
    }
