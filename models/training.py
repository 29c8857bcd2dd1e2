"""How is a model fitted? Pooled LSTM on lstm_train, LightGBM heads on the LSTM's embeddings of the
later head_train split (data the LSTM never fitted), early stopping on validation; test untouched.

Per-market heads are kept only where they beat the global head on that market's validation rows;
other markets fall back to the global model.
"""
from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import lightgbm as lgb
import numpy as np
import sklearn
import torch
from torch import nn
from tqdm import tqdm

from core.data.features import FEATURE_NAMES, SEQUENCE_LENGTH
from models.dataset import MarketData, SplitPlan, labelled_windows, load_market
from models.hybrid import HybridModel
from models.labels import LabelSpec
from models.lstm import EncoderConfig, SequenceEncoder
from models.manager import GLOBAL_MODEL
from models.metrics import classification_metrics
from models.scaler import FeatureScaler

log = logging.getLogger(__name__)

BASELINE_DIR = "baselines"
TABULAR_BASELINE_FILE = "lightgbm_last_step.txt"
REPORT_FILE = "training_report.json"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 7
    encoder: EncoderConfig = EncoderConfig()
    epochs: int = 6
    samples_per_epoch: int = 60_000  # windows drawn per epoch (overlapping windows are redundant)
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 2
    head_rounds: int = 400
    head_learning_rate: float = 0.05
    head_leaves: int = 15
    head_min_rows: int = 200
    split_fractions: tuple[float, float, float] = (0.60, 0.75, 0.85)
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


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
                lines.append(f"{market:10s} {name:22s} {m['rows']:6d} {m['accuracy']:6.3f} {m['macro_f1']:8.3f} {auc_b:>7s} {auc_s:>8s} {m['log_loss']:8.4f}")
        return "\n".join(lines)


def head_params(config: TrainConfig) -> dict:
    return {
        "objective": "multiclass",
        "num_class": 3,
        "learning_rate": config.head_learning_rate,
        "num_leaves": config.head_leaves,
        "max_depth": 5,
        "min_data_in_leaf": config.head_min_rows,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": config.threads,
        "verbose": -1,
    }


def fit_booster(x_train, y_train, x_valid, y_valid, config: TrainConfig) -> lgb.Booster:
    train_set = lgb.Dataset(x_train, y_train, free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set)
    return lgb.train(
        head_params(config), train_set, num_boost_round=config.head_rounds, valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )


class _Pool:
    """All markets' scaled feature rows in one array, so that windows of any market gather at once."""

    def __init__(self, datasets: Sequence[MarketData], scaler: FeatureScaler):
        self.offsets = np.cumsum([0] + [len(d.history.values) for d in datasets])[:-1]
        self.rows = np.concatenate([scaler.transform(np.nan_to_num(d.history.values)) for d in datasets]).astype(np.float32)
        self._steps = np.arange(-SEQUENCE_LENGTH + 1, 1)

    def windows(self, market_index: int, ends: np.ndarray) -> np.ndarray:
        return self.rows[self.offsets[market_index] + ends[:, None] + self._steps[None, :]]

    def gather(self, global_ends: np.ndarray) -> np.ndarray:
        return self.rows[global_ends[:, None] + self._steps[None, :]]


def _train_encoder(pool: _Pool, train_idx: np.ndarray, train_y: np.ndarray, stop_idx: np.ndarray, stop_y: np.ndarray,
                   config: TrainConfig, progress: bool) -> tuple[SequenceEncoder, list[dict]]:
    rng = np.random.default_rng(config.seed)
    encoder = SequenceEncoder(config.encoder)
    counts = np.bincount(train_y, minlength=3).astype(np.float64)
    weights = torch.tensor(counts.sum() / (3 * np.maximum(counts, 1)), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    optimiser = torch.optim.AdamW(encoder.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    stop_x = torch.from_numpy(pool.gather(stop_idx))
    stop_t = torch.from_numpy(stop_y)
    best_loss, best_state, stale, history = np.inf, None, 0, []
    for epoch in range(config.epochs):
        encoder.train()
        chosen = rng.choice(len(train_idx), size=min(config.samples_per_epoch, len(train_idx)), replace=False)
        batches = range(0, len(chosen), config.batch_size)
        running = 0.0
        for start in tqdm(batches, desc=f"LSTM epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False, unit="batch"):
            rows = chosen[start : start + config.batch_size]
            x = torch.from_numpy(pool.gather(train_idx[rows]))
            y = torch.from_numpy(train_y[rows])
            optimiser.zero_grad()
            loss = loss_fn(encoder(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
            optimiser.step()
            running += loss.item() * len(rows)
        encoder.eval()
        with torch.inference_mode():
            stop_loss = float(sum(loss_fn(encoder(stop_x[i : i + 4096]), stop_t[i : i + 4096]) * len(stop_t[i : i + 4096])
                                  for i in range(0, len(stop_t), 4096)) / len(stop_t))
        history.append({"epoch": epoch + 1, "train_loss": running / len(chosen), "head_split_loss": stop_loss})
        log.info("LSTM epoch %d: train loss %.4f, held-out loss %.4f", epoch + 1, running / len(chosen), stop_loss)
        if stop_loss < best_loss - 1e-4:
            best_loss, stale = stop_loss, 0
            best_state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    encoder.load_state_dict(best_state)
    encoder.eval()
    return encoder, history


def _versions() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightgbm": lgb.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def train_models(data_dir: Path, markets: Sequence[str], out_dir: Path, *, interval: str = "1h",
                 interval_seconds: int = 3600, spec: LabelSpec = LabelSpec(), config: TrainConfig = TrainConfig(),
                 progress: bool = True) -> TrainReport:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    out_dir = Path(out_dir)
    datasets = []
    for market in tqdm(markets, desc="features", disable=not progress, unit="market"):
        datasets.append(load_market(data_dir, market, interval, interval_seconds, spec))
    plan = SplitPlan.from_span(min(d.first for d in datasets), max(d.last for d in datasets), spec, interval_seconds,
                               config.split_fractions)
    splits = [[labelled_windows(d, plan, s) for s in range(4)] for d in datasets]
    for d, parts in zip(datasets, splits):
        if min(len(parts[0]), len(parts[1]), len(parts[2])) < 50:
            raise ValueError(f"{d.market}: too little labelled history in some split ({[len(p) for p in parts]} windows)")

    lstm_rows = np.concatenate([d.history.values[ends] for d, parts in zip(datasets, splits) for ends in [parts[0]]])
    scaler = FeatureScaler.fit(lstm_rows, FEATURE_NAMES)
    pool = _Pool(datasets, scaler)

    def pooled(split: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.concatenate([pool.offsets[i] + splits[i][split] for i in range(len(datasets))])
        y = np.concatenate([datasets[i].labels[splits[i][split]] for i in range(len(datasets))])
        return idx, y

    train_idx, train_y = pooled(0)
    head_idx, head_y = pooled(1)
    encoder, lstm_history = _train_encoder(pool, train_idx, train_y, head_idx, head_y, config, progress)
    template = HybridModel(encoder, None, scaler)  # head filled below

    def tabular(market_index: int, split: int) -> tuple[np.ndarray, np.ndarray]:
        scaled = pool.windows(market_index, splits[market_index][split])
        emb = template.embed(scaled)
        return np.hstack([emb, scaled[:, -1, :]]).astype(np.float64), scaled[:, -1, :].astype(np.float64)

    features = {(i, s): tabular(i, s) for i in range(len(datasets)) for s in (1, 2)}
    labels = {(i, s): datasets[i].labels[splits[i][s]] for i in range(len(datasets)) for s in (1, 2)}
    returns = {(i, s): datasets[i].returns[splits[i][s]] for i in range(len(datasets)) for s in (1, 2)}

    def stack(split: int, which: int):
        return (np.concatenate([features[(i, split)][which] for i in range(len(datasets))]),
                np.concatenate([labels[(i, split)] for i in range(len(datasets))]))

    xh, yh = stack(1, 0)
    xv, yv = stack(2, 0)
    global_head = fit_booster(xh, yh, xv, yv, config)
    th, _ = stack(1, 1)
    tv, _ = stack(2, 1)
    baseline = fit_booster(th, yh, tv, yv, config)
    prior = np.bincount(np.concatenate([d.labels[p[0]] for d, p in zip(datasets, splits)]), minlength=3) / len(train_y)

    report = TrainReport(out_dir, 0.0)
    per_market_heads = []
    common = {
        "feature_names": list(FEATURE_NAMES),
        "sequence_length": SEQUENCE_LENGTH,
        "interval": interval,
        "label": spec.to_dict(),
        "splits": plan.to_dict(),
        "training_config": config.to_dict(),
        "library_versions": _versions(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "lstm_history": lstm_history,
        "class_prior": prior.tolist(),
        "sources": {
            d.market: {"file": d.source.name, "first": d.first.isoformat(), "last": d.last.isoformat(),
                       "gaps": d.n_gaps, "windows_per_split": dict(zip(("lstm_train", "head_train", "validation", "test"),
                                                                        [int(len(p)) for p in parts]))}
            for d, parts in zip(datasets, splits)
        },
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    validation: dict[str, dict] = {}
    for i, d in enumerate(datasets):
        xvi, tvi = features[(i, 2)]
        yvi, rvi = labels[(i, 2)], returns[(i, 2)]
        candidates = {
            "hybrid_global": classification_metrics(yvi, global_head.predict(xvi), rvi),
            "baseline_lightgbm_last": classification_metrics(yvi, baseline.predict(tvi), rvi),
            "baseline_class_prior": classification_metrics(yvi, np.tile(prior, (len(yvi), 1)), rvi),
        }
        xhi, _ = features[(i, 1)]
        own = fit_booster(xhi, labels[(i, 1)], xvi, yvi, config)
        candidates["hybrid_own_head"] = classification_metrics(yvi, own.predict(xvi), rvi)
        keep_own = candidates["hybrid_own_head"]["log_loss"] < candidates["hybrid_global"]["log_loss"]
        if keep_own:
            per_market_heads.append(d.market)
            model = HybridModel(encoder, own, scaler, common | {
                "model_id": f"hybrid-{d.market}-{stamp}", "scope": d.market, "markets": [d.market],
                "validation_metrics": candidates["hybrid_own_head"]})
            model.save(out_dir / d.market)
        elif (out_dir / d.market).is_dir():
            shutil.rmtree(out_dir / d.market)  # a head from an earlier run must not outlive this one
        validation[d.market] = candidates
    global_validation = classification_metrics(yv, global_head.predict(xv), np.concatenate([returns[(i, 2)] for i in range(len(datasets))]))
    HybridModel(encoder, global_head, scaler, common | {
        "model_id": f"hybrid-global-{stamp}", "scope": GLOBAL_MODEL, "markets": list(markets),
        "validation_metrics": global_validation}).save(out_dir / GLOBAL_MODEL)
    (out_dir / BASELINE_DIR).mkdir(parents=True, exist_ok=True)
    baseline.save_model(str(out_dir / BASELINE_DIR / TABULAR_BASELINE_FILE))
    report.seconds = time.perf_counter() - started
    report.markets = validation
    report.per_market_heads = tuple(per_market_heads)
    (out_dir / REPORT_FILE).write_text(json.dumps({
        "seconds": round(report.seconds, 1), "per_market_heads": per_market_heads, "validation": validation,
        "class_prior": prior.tolist(), "splits": plan.to_dict(), "label": spec.to_dict(),
        "library_versions": _versions(), "training_config": config.to_dict(),
    }, indent=2, default=str))
    return report
