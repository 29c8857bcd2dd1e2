"""How is a model fitted and saved? `autotrader train`: the recipe of models/fit.py on every market's
history, with the chronological, purged split of models/dataset.py; the test split stays untouched.

One global model serves every market (the walk-forward judges this recipe: docs/walkforward.md);
with `per_market_heads`, a market also gets its own head where it beats the global head's validation
log-loss. Beside the models: a LightGBM baseline on the last step's features, for `evaluate`.
"""
from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field
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


def train_models(data_dir: Path, markets: Sequence[str], out_dir: Path, *, interval: str = "1h",
                 interval_seconds: int = 3600, spec: LabelSpec = LabelSpec(), config: TrainConfig = TrainConfig(),
                 progress: bool = True, plan: SplitPlan | None = None, extra_metadata: dict | None = None) -> TrainReport:
    """Train and save the models of `markets`; `plan` overrides the split (default: fractions of the
    span); `extra_metadata` is written into every model_metadata.json (e.g. the walk-forward's summary)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    datasets = [load_market(data_dir, m, interval, interval_seconds, spec)
                for m in tqdm(markets, desc="features", disable=not progress, unit="market")]
    plan = plan or SplitPlan.from_span(min(d.first for d in datasets), max(d.last for d in datasets), spec,
                                       interval_seconds, config.split_fractions)
    splits = split_windows(datasets, plan)
    for d, parts in zip(datasets, splits):
        if min(len(parts[LSTM_TRAIN]), len(parts[HEAD_TRAIN]), len(parts[VALIDATION])) < MIN_WINDOWS:
            raise ValueError(f"{d.market}: too little labelled history in some split ({[len(p) for p in parts]} windows)")
    encoder_fit = fit_encoder(datasets, splits, config, progress)
    inputs = [head_inputs(encoder_fit, d) for d in datasets]
    global_head, calibration = fit_head_and_calibration(inputs, datasets, splits, config, plan)
    tabular = [HeadInputs(hi.ends, hi.last_step, hi.last_step) for hi in inputs]  # the baseline: no embedding
    th, yh, _ = stacked(tabular, datasets, splits, HEAD_TRAIN)
    tv, yv, _ = stacked(tabular, datasets, splits, VALIDATION)
    baseline = fit_booster(th, yh, tv, yv, config)
    prior = np.bincount(np.concatenate([d.labels[p[LSTM_TRAIN]] for d, p in zip(datasets, splits)]), minlength=3)
    prior = prior / prior.sum()
    common = {
        "feature_names": list(FEATURE_NAMES), "sequence_length": SEQUENCE_LENGTH, "interval": interval,
        "label": spec.to_dict(), "splits": plan.to_dict(), "training_config": config.to_dict(),
        "library_versions": versions(), "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "lstm_history": encoder_fit.history, "class_prior": prior.tolist(), "calibration": calibration.to_dict(),
        "sources": {d.market: {"file": d.source.name, "first": d.first.isoformat(), "last": d.last.isoformat(),
                               "gaps": d.n_gaps, "windows_per_split": dict(zip(
                                   ("lstm_train", "head_train", "validation", "test"), [int(len(p)) for p in parts]))}
                    for d, parts in zip(datasets, splits)},
        **(extra_metadata or {}),
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    validation, per_market_heads = {}, []
    for i, d in enumerate(datasets):
        xv, yvi, rvi = stacked(inputs[i:i + 1], [d], splits[i:i + 1], VALIDATION)
        tvi, _, _ = stacked(tabular[i:i + 1], [d], splits[i:i + 1], VALIDATION)
        candidates = {
            "hybrid_global": classification_metrics(yvi, calibration.apply(raw_proba(global_head, xv)), rvi),
            "baseline_lightgbm_last": classification_metrics(yvi, baseline.predict(tvi), rvi),
            "baseline_class_prior": classification_metrics(yvi, np.tile(prior, (len(yvi), 1)), rvi),
        }
        if config.per_market_heads:
            xhi, yhi, _ = stacked(inputs[i:i + 1], [d], splits[i:i + 1], HEAD_TRAIN)
            own = fit_booster(xhi, yhi, xv, yvi, config)
            candidates["hybrid_own_head"] = classification_metrics(yvi, calibration.apply(raw_proba(own, xv)), rvi)
            if candidates["hybrid_own_head"]["log_loss"] < candidates["hybrid_global"]["log_loss"]:
                per_market_heads.append(d.market)
                HybridModel(encoder_fit.encoder, own, encoder_fit.scaler, common | {
                    "model_id": f"hybrid-{d.market}-{stamp}", "scope": d.market, "markets": [d.market],
                    "validation_metrics": candidates["hybrid_own_head"]}, calibration=calibration).save(out_dir / d.market)
        if d.market not in per_market_heads and (out_dir / d.market).is_dir():
            shutil.rmtree(out_dir / d.market)  # a head from an earlier run must not outlive this one
        validation[d.market] = candidates
    xv_all, yv_all, rv_all = stacked(inputs, datasets, splits, VALIDATION)
    HybridModel(encoder_fit.encoder, global_head, encoder_fit.scaler, common | {
        "model_id": f"hybrid-global-{stamp}", "scope": GLOBAL_MODEL, "markets": list(markets),
        "validation_metrics": classification_metrics(yv_all, calibration.apply(raw_proba(global_head, xv_all)), rv_all)},
        calibration=calibration).save(out_dir / GLOBAL_MODEL)
    (out_dir / BASELINE_DIR).mkdir(parents=True, exist_ok=True)
    baseline.save_model(str(out_dir / BASELINE_DIR / TABULAR_BASELINE_FILE))
    report = TrainReport(out_dir, time.perf_counter() - started, validation, tuple(per_market_heads))
    (out_dir / REPORT_FILE).write_text(json.dumps({
        "seconds": round(report.seconds, 1), "per_market_heads": per_market_heads, "validation": validation,
        "class_prior": prior.tolist(), "splits": plan.to_dict(), "label": spec.to_dict(), "library_versions": versions(),
        "training_config": config.to_dict(), "calibration": calibration.to_dict(),
    }, indent=2, default=str))
    return report
