"""The walk-forward's tasks: what one worker does for one group's LSTM, one fold, one test period or
one search trial. Each is a plain function of small, picklable arguments (a `Job` naming the files
and the configuration, indices, a fold's result); each worker reads and featurises the candles
itself, once per job (core.research.cluster.worker_cache), so no candle frame travels with a task.

    encoder_task(job, group, label)       the group's LSTM and every window's head input
    fold_task(job, index, encoders)       the fold's head and calibration, its test AUC, and every
                                          grid candidate simulated on its validation slice
    test_task(job, index, part, chosen)   the chosen candidate and the trend rule on the test period
    trial_task(job, parts, candidate)     one candidate on every validation slice (the search)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.data.candles import load_candle_csv, resolve_candle_file
from core.data.markets import priced_in_krw
from core.research.baselines import TrendFeed, sleeve_settings, trend_settings
from core.research.cluster import worker_cache
from core.research.context import ContextModel, column_names, with_context
from core.research.folds import Fold, make_folds
from core.research.selection import Candidate, SliceScore, grid
from core.trading.backtest import BacktestResult, Simulation, identifiers
from core.trading.cycle import TradingCycle
from core.trading.feeds import PrecomputedFeed
from core.trading.paper import PaperExchange
from core.trading.portfolio import Portfolio
from core.trading.types import RiskSettings
from models.dataset import MarketData, load_market
from models.fit import TEST, fit_encoder, fit_head_and_calibration, head_inputs, raw_proba, split_windows
from models.hybrid import HybridModel
from models.metrics import classification_metrics


@dataclass(frozen=True)
class Job:
    """One walk-forward run, as every task sees it (`token` keeps one run's cache apart from the next)."""

    data_dir: Path
    train_dir: Path
    markets: tuple[str, ...]
    config: object  # WalkForwardConfig
    token: str


@dataclass
class Prepared:
    data: dict  # label spec -> [MarketData] of the training candles
    series: dict  # market -> candles traded (priced in KRW)
    histories: dict  # market -> FeatureHistory of the traded candles ({} when another data set is traded)
    learnt: tuple  # (series, histories) of the training candles: where a validation slice falls back to
    folds: list[Fold]  # those whose test period has candles (their `index` counts every fold made)
    base: RiskSettings
    candidates: list[Candidate]

    def fold(self, index: int) -> Fold:
        return next(f for f in self.folds if f.index == index)


@dataclass
class FoldPart:
    """A fold's result before its test period is traded."""

    index: int
    models: list[HybridModel]
    aucs: list[dict]
    scores: list[SliceScore]  # one per grid candidate, on this fold's validation slice
    validated_on: str
    seconds: float


@dataclass
class Slice:
    """A validation or test period: its clock ticks and, per label, the feed of its signals."""

    ticks: pd.DatetimeIndex
    feeds: list = field(default_factory=list)
    series: dict = field(default_factory=dict)  # the candles it is traded on


class OneModel:
    """What a PrecomputedFeed asks for: the fold's model, for every market."""

    def __init__(self, model: HybridModel):
        self.model = model

    def get_model(self, market: str) -> HybridModel:
        return self.model


def prepared(job: Job) -> Prepared:
    return worker_cache(("walkforward", job.token), lambda: prepare(job))


def prepare(job: Job) -> Prepared:
    """The candles, features, labels and folds of a run (the driver and every worker compute the same)."""
    config, data_dir, train_dir, markets = job.config, Path(job.data_dir), Path(job.train_dir), job.markets
    data = {spec: [load_market(train_dir, m, config.interval, config.interval_seconds, spec) for m in markets]
            for spec in config.labels}
    first_spec = config.labels[0]
    if config.context:
        if data_dir != train_dir:
            raise ValueError("--context needs the same candles to learn from and to trade (no --train-data)")
        candles = {d.market: load_candle_csv(d.source) for d in data[first_spec]}
        data = {spec: with_context(ds, candles, config.context) for spec, ds in data.items()}
    histories = {d.market: d.history for d in data[first_spec]}  # features do not depend on the label
    sources = [_source(data_dir, train_dir, d) for d in data[first_spec]]
    series = {m: priced_in_krw(load_candle_csv(s), s.name) for m, s in zip(markets, sources)}
    learnt = (series, histories)  # where a validation slice is traded when the trading data has no candles there
    if data_dir != train_dir:
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
    return Prepared(data, series, histories, learnt, folds, base, grid(base, len(config.labels)))


def encoder_task(job: Job, group: int, label: int):
    """The group's LSTM (fitted on its first fold's LSTM span) and every window's head input."""
    p = prepared(job)
    datasets = p.data[job.config.labels[label]]
    fold = next(f for f in p.folds if f.group == group)
    fit = fit_encoder(datasets, split_windows(datasets, fold.lstm_plan), job.config.train)
    return fit, [head_inputs(fit, d) for d in datasets]


def fold_task(job: Job, index: int, encoders: Sequence) -> FoldPart:
    t0 = time.perf_counter()
    p, config = prepared(job), job.config
    fold = p.fold(index)
    models, aucs = [], []
    for li, spec in enumerate(config.labels):
        model, auc = fit_fold(p.data[spec], fold, config, encoders[li], li, spec)
        models.append(model)
        aucs.append(auc)
    validation, where = validation_slice(job, p, index, models)
    scores = [SliceScore.of(simulate(validation.series, validation.feeds[c.label], validation.ticks, c.settings,
                                     config).metrics) for c in p.candidates]
    return FoldPart(index, models, aucs, scores, where, time.perf_counter() - t0)


def test_task(job: Job, index: int, part: FoldPart, chosen: int) -> tuple[BacktestResult, BacktestResult, float]:
    t0 = time.perf_counter()
    p, config = prepared(job), job.config
    fold, candidate = p.fold(index), p.candidates[chosen]
    test = make_slice(p.series, part.models, fold.test_start, fold.test_end, p.histories, config,
                      labels=[candidate.label])
    strategy = simulate(p.series, test.feeds[0], test.ticks, candidate.settings, config)
    trend_feed = TrendFeed(p.series, config.interval_seconds, test.ticks[0], test.ticks[-1])
    trend = simulate(p.series, trend_feed, test.ticks, trend_settings(len(job.markets)), config)
    return strategy, trend, time.perf_counter() - t0


def trial_task(job: Job, parts: Sequence[FoldPart], candidate: Candidate) -> list[SliceScore]:
    """A search trial: the candidate on every fold's validation slice (slices built once per worker)."""
    p = prepared(job)
    slices = worker_cache(("validations", job.token), dict)
    out = []
    for part in parts:
        if part.index not in slices:
            slices[part.index] = validation_slice(job, p, part.index, part.models)[0]
        validation = slices[part.index]
        out.append(SliceScore.of(simulate(validation.series, validation.feeds[candidate.label], validation.ticks,
                                          candidate.settings, job.config).metrics))
    return out


def validation_slice(job: Job, p: Prepared, index: int, models) -> tuple[Slice, str]:
    """The fold's validation period on the traded candles or, where they have none, on the learnt ones."""
    fold = p.fold(index)
    validation = make_slice(p.series, models, fold.plan.validation_start, fold.test_start, p.histories, job.config)
    if len(validation.ticks):
        return validation, str(job.data_dir)
    # e.g. Upbit candles since 2025 traded, Binance's history learnt from
    return (make_slice(p.learnt[0], models, fold.plan.validation_start, fold.test_start, p.learnt[1], job.config),
            str(job.train_dir))


def ticks_between(series: dict[str, pd.DataFrame], first: pd.Timestamp, end: pd.Timestamp, interval: pd.Timedelta):
    stamps = pd.DatetimeIndex([])
    for candles in series.values():
        closes = candles.index + interval
        stamps = stamps.union(closes[(closes >= first) & (closes < end)])
    return stamps


def simulate(series, feed, ticks, settings: RiskSettings, config) -> BacktestResult:
    cycle = TradingCycle(feed, PaperExchange(config.start_krw, config.slippage),
                         Portfolio(config.start_krw, config.start_krw), new_identifier=identifiers())
    return Simulation(ticks, lambda now: cycle.run(now, settings), cycle, series, config.start_krw,
                      config.interval_seconds).run()


def make_slice(series, models: list[HybridModel], first: pd.Timestamp, end: pd.Timestamp, histories, config,
               labels: list[int] | None = None) -> Slice:
    interval = pd.Timedelta(seconds=config.interval_seconds)
    ticks = ticks_between(series, first, end, interval)
    chosen = range(len(models)) if labels is None else labels
    feeds = [PrecomputedFeed(series, OneModel(models[i]), config.interval_seconds, ticks[0], ticks[-1], histories)
             for i in chosen] if len(ticks) else []
    return Slice(ticks, feeds, series)


def fit_fold(datasets: list[MarketData], fold: Fold, config, encoder, label: int, spec) -> tuple[HybridModel, dict]:
    """The fold's model (the group's LSTM; the head and calibration now) and its test AUC."""
    fit, inputs = encoder
    splits = split_windows(datasets, fold.plan)
    head, calibration = fit_head_and_calibration(inputs, datasets, splits, config.train, fold.plan)
    meta = {"model_id": f"wf-{fold.index}-{label}", "label": spec.to_dict(), "splits": fold.plan.to_dict()}
    if config.context:
        model = ContextModel(fit.encoder, head, fit.scaler, meta, calibration=calibration,
                             context_size=len(column_names(config.context)))
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


def _source(data_dir: Path, train_dir: Path, trained: MarketData) -> Path:
    """The candle file traded: the training file itself, or the same market's file in another data set."""
    if data_dir == train_dir:
        return trained.source
    return resolve_candle_file(data_dir, trained.market, "1h", same_base_fallback=True)
