"""`autotrader walkforward`: the whole recipe judged only out of sample, fold after fold.

For each fold (core.research.folds): fit the model on the past only (models/fit.py: LSTM once per
group of folds, head and calibration at every fold), simulate every candidate's decision parameters
on the fold's validation slice, choose on the validation slices so far (core.research.selection),
then trade the fold's test period with that choice through the same Simulation and trading cycle as
`autotrader backtest`, beside buy-and-hold, cash and the trend rule on the same candles. The test
periods are stitched into one equity curve (core.research.stitch).
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.data.candles import load_candle_csv, resolve_candle_file
from core.data.markets import priced_in_krw
from core.research.baselines import TrendFeed, sleeve_settings, trend_settings
from core.research.context import ContextModel, column_names, with_context
from core.research.folds import Fold, make_folds
from core.research.selection import Candidate, SliceScore, choose, grid, search
from core.research.stitch import FoldRun, summarise
from core.trading.backtest import BacktestResult, Simulation, identifiers
from core.trading.cycle import TradingCycle
from core.trading.feeds import PrecomputedFeed
from core.trading.paper import PaperExchange
from core.trading.portfolio import Portfolio
from core.trading.types import RiskSettings
from models.dataset import MarketData, load_market
from models.fit import (
    TEST,
    TrainConfig,
    fit_encoder,
    fit_head_and_calibration,
    head_inputs,
    raw_proba,
    split_windows,
)
from models.hybrid import HybridModel
from models.labels import LabelSpec
from models.metrics import classification_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class WalkForwardConfig:
    start: pd.Timestamp = pd.Timestamp("2019-01-01", tz="UTC")
    test_months: int = 3
    validation_months: int = 6
    head_months: int = 12
    window: str = "expanding"
    train_months: int = 36
    lstm_every: int = 4
    labels: tuple[LabelSpec, ...] = (LabelSpec(),)
    train: TrainConfig = TrainConfig(patience=1)  # the LSTM's held-out loss is best after an epoch or two
    base: RiskSettings | None = None  # the settings the grid varies (default: one sleeve per market)
    start_krw: float = 1_000_000
    slippage: float = 0.0005
    min_exposure: float = 0.10
    trials: int = 0  # an Optuna search for the defaults (0: the grid's choice on every slice)
    interval: str = "1h"
    interval_seconds: int = 3600
    context: tuple[str, ...] = ()  # context groups for the head (core/research/context.py); () = the 46 only


class OneModel:
    """What a PrecomputedFeed asks for: the fold's model, for every market."""

    def __init__(self, model: HybridModel):
        self.model = model

    def get_model(self, market: str) -> HybridModel:
        return self.model


@dataclass
class Slice:
    """A validation or test period: its clock ticks and, per label, the feed of its signals."""

    ticks: pd.DatetimeIndex
    feeds: list = field(default_factory=list)
    series: dict = field(default_factory=dict)  # the candles it is traded on


def ticks_between(series: dict[str, pd.DataFrame], first: pd.Timestamp, end: pd.Timestamp, interval: pd.Timedelta):
    stamps = pd.DatetimeIndex([])
    for candles in series.values():
        closes = candles.index + interval
        stamps = stamps.union(closes[(closes >= first) & (closes < end)])
    return stamps


def simulate(series, feed, ticks, settings: RiskSettings, config: WalkForwardConfig) -> BacktestResult:
    cycle = TradingCycle(feed, PaperExchange(config.start_krw, config.slippage),
                         Portfolio(config.start_krw, config.start_krw), new_identifier=identifiers())
    return Simulation(ticks, lambda now: cycle.run(now, settings), cycle, series, config.start_krw,
                      config.interval_seconds).run()


def run_walkforward(data_dir: Path, markets: Sequence[str], config: WalkForwardConfig = WalkForwardConfig(), *,
                    train_dir: Path | None = None, progress: bool = True) -> dict:
    started = time.perf_counter()
    train_dir = Path(train_dir or data_dir)
    data = {spec: [load_market(train_dir, m, config.interval, config.interval_seconds, spec) for m in markets]
            for spec in config.labels}
    first_spec = config.labels[0]
    if config.context:
        if Path(data_dir) != train_dir:
            raise ValueError("--context needs the same candles to learn from and to trade (no --train-data)")
        candles = {d.market: load_candle_csv(d.source) for d in data[first_spec]}
        data = {spec: with_context(ds, candles, config.context) for spec, ds in data.items()}
    histories = {d.market: d.history for d in data[first_spec]}  # features do not depend on the label
    series = {m: priced_in_krw(load_candle_csv(_source(data_dir, train_dir, d)), _source(data_dir, train_dir, d).name)
              for m, d in zip(markets, data[first_spec])}
    learnt = (series, histories)  # where a validation slice is traded when the trading data has no candles there
    if Path(data_dir) != train_dir:
        learnt = ({d.market: priced_in_krw(load_candle_csv(d.source), d.source.name) for d in data[first_spec]},
                  histories)
        histories = {}  # another data set for trading: its features are computed from its own candles
    interval = pd.Timedelta(seconds=config.interval_seconds)
    first = min(d.first for d in data[first_spec])
    last = max(c.index[-1] for c in series.values())
    folds = make_folds(first, last, start=config.start, horizon=max(s.horizon for s in config.labels),
                       interval_seconds=config.interval_seconds, test_months=config.test_months,
                       validation_months=config.validation_months, head_months=config.head_months,
                       window=config.window, train_months=config.train_months, lstm_every=config.lstm_every)
    folds = [f for f in folds if len(ticks_between(series, f.test_start, f.test_end, interval))]
    if not folds:
        raise ValueError(f"no test period from {config.start:%Y-%m-%d} has candles in {data_dir}")
    base = config.base or sleeve_settings(len(markets), RiskSettings(take_profit=0.0))
    candidates = grid(base, len(config.labels))
    scores: dict[int, list[SliceScore]] = {i: [] for i in range(len(candidates))}
    validations: list[Slice] = []
    runs: list[FoldRun] = []
    validated_on: list[str] = []
    encoders: dict[tuple[int, int], object] = {}
    bar = tqdm(folds, desc="walk-forward", unit="fold", disable=not progress)
    for fold in bar:
        t0 = time.perf_counter()
        models, aucs = [], []
        for li, spec in enumerate(config.labels):
            model, auc = _fit_fold(data[spec], fold, config.train, encoders, li, spec, config.context)
            models.append(model)
            aucs.append(auc)
        validation = _slice(series, models, fold.plan.validation_start, fold.test_start, histories, config)
        validated_on.append(str(data_dir))
        if not len(validation.ticks):  # e.g. Upbit candles since 2025 traded, Binance's history learnt from
            validation = _slice(learnt[0], models, fold.plan.validation_start, fold.test_start, learnt[1], config)
            validated_on[-1] = str(train_dir)
        validations.append(validation)
        for i, candidate in enumerate(candidates):
            result = simulate(validation.series, validation.feeds[candidate.label], validation.ticks,
                              candidate.settings, config)
            scores[i].append(SliceScore.of(result.metrics))
        chosen = candidates[choose(candidates, scores, fold.index, config.min_exposure)]
        test = _slice(series, models, fold.test_start, fold.test_end, histories, config, labels=[chosen.label])
        strategy = simulate(series, test.feeds[0], test.ticks, chosen.settings, config)
        trend_feed = TrendFeed(series, config.interval_seconds, test.ticks[0], test.ticks[-1])
        trend = simulate(series, trend_feed, test.ticks, trend_settings(len(markets)), config)
        runs.append(FoldRun(fold=fold, chosen=chosen.describe(base), auc=aucs[chosen.label], auc_by_label=aucs,
                            strategy=strategy, trend=trend, seconds=time.perf_counter() - t0,
                            model=model_record(models[chosen.label])))
        bar.set_postfix(fold=fold.label, trades=strategy.metrics["trades"])
    defaults = candidates[choose(candidates, scores, len(folds) - 1, config.min_exposure)]
    searched = None
    if config.trials:
        def evaluate(candidate: Candidate) -> list[SliceScore]:
            return [SliceScore.of(simulate(v.series, v.feeds[candidate.label], v.ticks, candidate.settings,
                                           config).metrics) for v in validations]

        defaults, best, n = search(base, len(config.labels), evaluate, config.trials, config.min_exposure,
                                   config.train.seed, progress)
        searched = {"trials": n, "score": best}
    report = summarise(runs, config, markets, data_dir, train_dir)
    for row, where in zip(report["folds"], validated_on):
        row["validation_traded_on"] = where
    report["defaults"] = {"label": config.labels[defaults.label].to_dict(), "settings": defaults.describe(RiskSettings()),
                          "chosen_on": "every fold's validation slice" + (" (Optuna search)" if searched else " (grid)"),
                          "search": searched}
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def model_record(model: HybridModel) -> dict:
    """What was traded, checkably: digests of the LSTM's weights and of the head, and the calibration."""
    weights = hashlib.sha256()
    for tensor in model.encoder.state_dict().values():
        weights.update(tensor.detach().cpu().numpy().tobytes())
    head = hashlib.sha256(model.head.model_to_string().encode()).hexdigest()[:16]
    return {"lstm": weights.hexdigest()[:16], "head": head, "head_trees": model.head.num_trees(),
            "head_inputs": model.head.num_feature(),
            "calibration": model.calibration.to_dict()}


def _source(data_dir: Path, train_dir: Path, trained: MarketData) -> Path:
    """The candle file traded: the training file itself, or the same market's file in another data set."""
    if Path(data_dir) == Path(train_dir):
        return trained.source
    return resolve_candle_file(Path(data_dir), trained.market, "1h", same_base_fallback=True)


def _fit_fold(datasets: list[MarketData], fold: Fold, config: TrainConfig, encoders: dict, label: int,
              spec: LabelSpec, context: tuple[str, ...] = ()) -> tuple[HybridModel, dict]:
    """The fold's model (the group's LSTM, fitted once; the head and calibration now) and its test AUC."""
    key = (fold.group, label)
    if key not in encoders:
        for old in [k for k in encoders if k[0] != fold.group]:  # one group's encoders in memory at a time
            del encoders[old]
        fit = fit_encoder(datasets, split_windows(datasets, fold.lstm_plan), config)
        encoders[key] = (fit, [head_inputs(fit, d) for d in datasets])
    fit, inputs = encoders[key]
    splits = split_windows(datasets, fold.plan)
    head, calibration = fit_head_and_calibration(inputs, datasets, splits, config, fold.plan)
    meta = {"model_id": f"wf-{fold.index}-{label}", "label": spec.to_dict(), "splits": fold.plan.to_dict()}
    if context:
        model = ContextModel(fit.encoder, head, fit.scaler, meta, calibration=calibration,
                             context_size=len(column_names(context)))
    else:
        model = HybridModel(fit.encoder, head, fit.scaler, meta, calibration=calibration)
    ys, ps, rs = [], [], []
    for hi, d, parts in zip(inputs, datasets, splits):
        ends = parts[TEST]
        if len(ends):
            ys.append(d.labels[ends])
            ps.append(calibration.apply(raw_proba(head, hi.x[hi.rows(ends)])))
            rs.append(d.returns[ends])
    if not ys or len(np.concatenate(ys)) < 30:
        return model, {"buy": None, "sell": None, "rows": 0}
    m = classification_metrics(np.concatenate(ys), np.concatenate(ps), np.concatenate(rs))
    return model, {"buy": m["roc_auc_buy"], "sell": m["roc_auc_sell"], "rows": m["rows"], "log_loss": m["log_loss"]}


def _slice(series, models: list[HybridModel], first: pd.Timestamp, end: pd.Timestamp, histories, config,
           labels: list[int] | None = None) -> Slice:
    interval = pd.Timedelta(seconds=config.interval_seconds)
    ticks = ticks_between(series, first, end, interval)
    chosen = range(len(models)) if labels is None else labels
    feeds = [PrecomputedFeed(series, OneModel(models[i]), config.interval_seconds, ticks[0], ticks[-1], histories)
             for i in chosen] if len(ticks) else []
    return Slice(ticks, feeds, series)

