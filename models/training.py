"""How is a model fitted and saved? `autotrader train`: the recipe of models/fit.py on every market's
history, with the chronological, purged split of models/dataset.py; the test split stays untouched.

One global model serves every market (the walk-forward judges this recipe: docs/walkforward.md);
with `per_market_heads`, a market also gets its own head where it beats the global head's validation
log-loss. Beside the models: a LightGBM baseline on the last step's features, for `evaluate`.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import sklearn
import torch
from tqdm import tqdm

from core.data.features import FEATURE_NAMES, SEQUENCE_LENGTH
from models.dataset import SplitPlan, load_market
from models.fit import (
    HEAD_TRAIN,
    LSTM_TRAIN,
    VALIDATION,
    HeadInputs,
    TrainConfig,
    fit_booster,
    fit_encoder,
    fit_head_and_calibration,
    head_inputs,
    raw_proba,
    split_windows,
    stacked,
)
from models.gbm import lgb
from models.hybrid import HybridModel
from models.labels import LabelSpec
from models.manager import GLOBAL_MODEL
from models.metrics import classification_metrics
from models.tasks import SerialRunner

log = logging.getLogger(__name__)

BASELINE_DIR = "baselines"
TABULAR_BASELINE_FILE = "lightgbm_last_step.txt"
REPORT_FILE = "training_report.json"
MIN_WINDOWS = 50

__all__ = ["TrainConfig", "TrainReport", "train_models", "versions", "BASELINE_DIR", "TABULAR_BASELINE_FILE"]


@dataclass
class TrainReport:
    out_dir: Path
    seconds: float
    markets: dict = field(default_factory=dict)  # market -> validation metrics per candidate
    per_market_heads: tuple[str, ...] = ()

    def table(self) -> str:
        lines = [f"{'market':10s} {'model':22s} {'rows':>6s} {'acc':>6s} {'macroF1':>8s} {'AUCbuy':>7s} {'AUCsell':>8s} {'logloss':>8s}"]
        for market, candidates in self.markets.items():
            for name, m in candidates.items():
                auc_b = "-" if m["roc_auc_buy"] is None else f"{m['roc_auc_buy']:.3f}"
                auc_s = "-" if m["roc_auc_sell"] is None else f"{m['roc_auc_sell']:.3f}"
                lines.append(f"{market:10s} {name:22s} {m['rows']:6d} {m['accuracy']:6.3f} {m['macro_f1']:8.3f} "
                             f"{auc_b:>7s} {auc_s:>8s} {m['log_loss']:8.4f}")
        return "\n".join(lines)


def versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "lightgbm": lgb.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__}


@dataclass
class GlobalFit:
    """The global head, its calibration, the tabular baseline and the class prior (one task, every market)."""

    head: object
    calibration: object
    baseline: object
    prior: np.ndarray
    metrics: dict  # the global head's validation metrics over every market


@dataclass
class MarketFit:
    """One market's validation figures and, where it beat the global head, its own head."""

    market: str
    source: dict
    candidates: dict
    own_head: object = None


def load_task(data_dir: Path, market: str, interval: str, interval_seconds: int, spec: LabelSpec):
    return load_market(data_dir, market, interval, interval_seconds, spec)


def span_task(data) -> tuple:
    return data.first, data.last


def encoder_task(datasets, plan: SplitPlan, config: TrainConfig, all_cores: bool, progress: bool = False):
    """The LSTM on every market's windows: on a cluster it runs alone, so on all of its worker's cores."""
    if all_cores:
        config = replace(config, threads=max(1, os.cpu_count() or 1))
    splits = split_windows(datasets, plan)
    for d, parts in zip(datasets, splits):
        if min(len(parts[LSTM_TRAIN]), len(parts[HEAD_TRAIN]), len(parts[VALIDATION])) < MIN_WINDOWS:
            raise ValueError(f"{d.market}: too little labelled history in some split ({[len(p) for p in parts]} windows)")
    return fit_encoder(datasets, splits, config, progress)


def inputs_task(fit, data) -> HeadInputs:
    return head_inputs(fit, data)


def global_task(inputs, datasets, plan: SplitPlan, config: TrainConfig, all_cores: bool) -> GlobalFit:
    """The global head, calibration and baseline (alone on a cluster too: all of the worker's cores)."""
    if all_cores:
        config = replace(config, threads=max(1, os.cpu_count() or 1))
    splits = split_windows(datasets, plan)
    head, calibration = fit_head_and_calibration(inputs, datasets, splits, config, plan)
    tabular = [HeadInputs(hi.ends, hi.last_step, hi.last_step) for hi in inputs]  # the baseline: no embedding
    th, yh, _ = stacked(tabular, datasets, splits, HEAD_TRAIN)
    tv, yv, _ = stacked(tabular, datasets, splits, VALIDATION)
    baseline = fit_booster(th, yh, tv, yv, config)
    prior = np.bincount(np.concatenate([d.labels[p[LSTM_TRAIN]] for d, p in zip(datasets, splits)]), minlength=3)
    xv, yv_all, rv = stacked(inputs, datasets, splits, VALIDATION)
    return GlobalFit(head, calibration, baseline, prior / prior.sum(),
                     classification_metrics(yv_all, calibration.apply(raw_proba(head, xv)), rv))


def market_task(hi: HeadInputs, d, plan: SplitPlan, config: TrainConfig, g: GlobalFit) -> MarketFit:
    """A market's validation figures for the global head and the baselines, and its own head if it helps."""
    parts = split_windows([d], plan)
    xv, yv, rv = stacked([hi], [d], parts, VALIDATION)
    tv, _, _ = stacked([HeadInputs(hi.ends, hi.last_step, hi.last_step)], [d], parts, VALIDATION)
    candidates = {
        "hybrid_global": classification_metrics(yv, g.calibration.apply(raw_proba(g.head, xv)), rv),
        "baseline_lightgbm_last": classification_metrics(yv, g.baseline.predict(tv), rv),
        "baseline_class_prior": classification_metrics(yv, np.tile(g.prior, (len(yv), 1)), rv),
    }
    own = None
    if config.per_market_heads:
        xh, yh, _ = stacked([hi], [d], parts, HEAD_TRAIN)
        own = fit_booster(xh, yh, xv, yv, config)
        candidates["hybrid_own_head"] = classification_metrics(yv, g.calibration.apply(raw_proba(own, xv)), rv)
        if candidates["hybrid_own_head"]["log_loss"] >= candidates["hybrid_global"]["log_loss"]:
            own = None
    source = {"file": d.source.name, "first": d.first.isoformat(), "last": d.last.isoformat(), "gaps": d.n_gaps,
              "windows_per_split": dict(zip(("lstm_train", "head_train", "validation", "test"),
                                            [int(len(p)) for p in parts[0]]))}
    return MarketFit(d.market, source, candidates, own)


def train_models(data_dir: Path, markets: Sequence[str], out_dir: Path, *, interval: str = "1h",
                 interval_seconds: int = 3600, spec: LabelSpec = LabelSpec(), config: TrainConfig = TrainConfig(),
                 progress: bool = True, plan: SplitPlan | None = None, extra_metadata: dict | None = None,
                 runner=None) -> TrainReport:
    """Train and save the models of `markets`; `plan` overrides the split (default: fractions of the
    span); `extra_metadata` is written into every model_metadata.json (e.g. the walk-forward's summary).
    `runner` (models.tasks, core.research.cluster): where the tasks run, by default in this process.
    Features, head inputs and per-market heads are a task per market; the LSTM and the global head
    are one task each, since they learn from every market at once."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    runner = runner or SerialRunner()
    small = replace(config, threads=1) if runner.task_threads == 1 else config
    data = [runner.submit(load_task, Path(data_dir), m, interval, interval_seconds, spec, key=f"train-features-{m}")
            for m in markets]
    spans = [runner.submit(span_task, d, key="train-span") for d in data]
    spans = [runner.result(s) for s in tqdm(spans, desc="features", disable=not progress, unit="market")]
    plan = plan or SplitPlan.from_span(min(s[0] for s in spans), max(s[1] for s in spans), spec,
                                       interval_seconds, config.split_fractions)
    fit = runner.submit(encoder_task, data, plan, config, runner.task_threads == 1, progress, key="train-lstm")
    inputs = [runner.submit(inputs_task, fit, d, key=f"train-inputs-{m}") for d, m in zip(data, markets)]
    global_fit = runner.submit(global_task, inputs, data, plan, config, runner.task_threads == 1,
                               key="train-global-head")
    fits = [runner.submit(market_task, hi, d, plan, small, global_fit, key=f"train-market-{m}")
            for hi, d, m in zip(inputs, data, markets)]
    del inputs, data  # on a cluster, freed as soon as the tasks that need them are done
    encoder_fit, g = runner.result(fit), runner.result(global_fit)
    per_market = [runner.result(f) for f in tqdm(fits, desc="heads", disable=not progress, unit="market")]
    common = {
        "feature_names": list(FEATURE_NAMES), "sequence_length": SEQUENCE_LENGTH, "interval": interval,
        "label": spec.to_dict(), "splits": plan.to_dict(), "training_config": config.to_dict(),
        "library_versions": versions(), "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "lstm_history": encoder_fit.history, "class_prior": g.prior.tolist(), "calibration": g.calibration.to_dict(),
        "sources": {m.market: m.source for m in per_market}, **(extra_metadata or {}),
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    per_market_heads = [m.market for m in per_market if m.own_head is not None]
    for m in per_market:
        if m.own_head is not None:
            HybridModel(encoder_fit.encoder, m.own_head, encoder_fit.scaler, common | {
                "model_id": f"hybrid-{m.market}-{stamp}", "scope": m.market, "markets": [m.market],
                "validation_metrics": m.candidates["hybrid_own_head"]}, calibration=g.calibration).save(out_dir / m.market)
        elif (out_dir / m.market).is_dir():
            shutil.rmtree(out_dir / m.market)  # a head from an earlier run must not outlive this one
    validation = {m.market: m.candidates for m in per_market}
    HybridModel(encoder_fit.encoder, g.head, encoder_fit.scaler, common | {
        "model_id": f"hybrid-global-{stamp}", "scope": GLOBAL_MODEL, "markets": list(markets),
        "validation_metrics": g.metrics}, calibration=g.calibration).save(out_dir / GLOBAL_MODEL)
    (out_dir / BASELINE_DIR).mkdir(parents=True, exist_ok=True)
    g.baseline.save_model(str(out_dir / BASELINE_DIR / TABULAR_BASELINE_FILE))
    report = TrainReport(out_dir, time.perf_counter() - started, validation, tuple(per_market_heads))
    (out_dir / REPORT_FILE).write_text(json.dumps({
        "seconds": round(report.seconds, 1), "per_market_heads": per_market_heads, "validation": validation,
        "class_prior": g.prior.tolist(), "splits": plan.to_dict(), "label": spec.to_dict(),
        "library_versions": versions(), "training_config": config.to_dict(), "calibration": g.calibration.to_dict(),
        "ran_on": runner.name,
    }, indent=2, default=str))
    return report
