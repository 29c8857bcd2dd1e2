"""What is fitted, in what order, on which rows? The one recipe, for `train` and every walk-forward fold.

1. The LSTM encoder learns on the lstm_train split (all coins pooled, class-weighted cross-entropy),
   stopped early on head_train rows it never fits; one scaler is fitted on lstm_train rows.
2. Every window of every market is embedded once; the head's input is [embedding, last-step features].
3. A LightGBM head learns on head_train rows, stopped early on validation rows.
4. A calibration is fitted on validation rows, with each class's mean forward return measured on
   head_train rows (models/calibration.py).
Test rows are never touched here. A SplitPlan says which rows are which (models/dataset.py).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from core.data.features import FEATURE_NAMES, N_FEATURES, SEQUENCE_LENGTH
from models.calibration import Calibration, class_mean_returns, fit_calibration
from models.dataset import MarketData, SplitPlan, labelled_windows
from models.gbm import lgb
from models.lstm import EncoderConfig, SequenceEncoder
from models.scaler import FeatureScaler

log = logging.getLogger(__name__)

LSTM_TRAIN, HEAD_TRAIN, VALIDATION, TEST = range(4)


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
    calibration: str = "platt"  # platt | isotonic
    per_market_heads: bool = False  # also try a head per market, kept where it beats the global one
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def head_params(config: TrainConfig) -> dict:
    return {
        "objective": "multiclass", "num_class": 3, "learning_rate": config.head_learning_rate,
        "num_leaves": config.head_leaves, "max_depth": 5, "min_data_in_leaf": config.head_min_rows,
        "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "seed": config.seed,
        "deterministic": True, "force_row_wise": True, "num_threads": config.threads, "verbose": -1,
    }


def fit_booster(x_train, y_train, x_valid, y_valid, config: TrainConfig) -> lgb.Booster:
    train_set = lgb.Dataset(x_train, y_train, free_raw_data=True)
    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set)
    return lgb.train(head_params(config), train_set, num_boost_round=config.head_rounds, valid_sets=[valid_set],
                     callbacks=[lgb.early_stopping(30, verbose=False)])


def split_windows(datasets: Sequence[MarketData], plan: SplitPlan) -> list[list[np.ndarray]]:
    """Per market, the labelled window ends of each split (lstm_train, head_train, validation, test)."""
    return [[labelled_windows(d, plan, s) for s in range(4)] for d in datasets]


@dataclass
class EncoderFit:
    encoder: SequenceEncoder
    scaler: FeatureScaler
    history: list[dict] = field(default_factory=list)


class _Pool:
    """All markets' scaled feature rows in one array, so that windows of any market gather at once."""

    def __init__(self, datasets: Sequence[MarketData], scaler: FeatureScaler):
        self.offsets = np.cumsum([0] + [len(d.history.values) for d in datasets])[:-1]
        self.rows = np.concatenate([scaler.transform(np.nan_to_num(d.history.values[:, :N_FEATURES]))
                                    for d in datasets]).astype(np.float32)
        self._steps = np.arange(-SEQUENCE_LENGTH + 1, 1)

    def windows(self, market_index: int, ends: np.ndarray) -> np.ndarray:
        return self.rows[self.offsets[market_index] + ends[:, None] + self._steps[None, :]]

    def gather(self, global_ends: np.ndarray) -> np.ndarray:
        return self.rows[global_ends[:, None] + self._steps[None, :]]


def fit_encoder(datasets: Sequence[MarketData], splits: list[list[np.ndarray]], config: TrainConfig,
                progress: bool = False) -> EncoderFit:
    """The LSTM on lstm_train windows of all markets, early-stopped on head_train windows."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    lstm_rows = np.concatenate([d.history.values[parts[LSTM_TRAIN], :N_FEATURES] for d, parts in zip(datasets, splits)])
    scaler = FeatureScaler.fit(lstm_rows, FEATURE_NAMES)
    pool = _Pool(datasets, scaler)

    def pooled(split: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.concatenate([pool.offsets[i] + splits[i][split] for i in range(len(datasets))])
        y = np.concatenate([datasets[i].labels[splits[i][split]] for i in range(len(datasets))])
        return idx, y

    train_idx, train_y = pooled(LSTM_TRAIN)
    stop_idx, stop_y = pooled(HEAD_TRAIN)
    encoder, history = _train_encoder(pool, train_idx, train_y, stop_idx, stop_y, config, progress)
    return EncoderFit(encoder, scaler, history)


def _train_encoder(pool: _Pool, train_idx, train_y, stop_idx, stop_y, config: TrainConfig, progress: bool):
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
        running = 0.0
        batches = range(0, len(chosen), config.batch_size)
        for start in tqdm(batches, desc=f"LSTM epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False,
                          unit="batch"):
            rows = chosen[start:start + config.batch_size]
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
            stop_loss = float(sum(loss_fn(encoder(stop_x[i:i + 4096]), stop_t[i:i + 4096]) * len(stop_t[i:i + 4096])
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


@dataclass
class HeadInputs:
    """The head's input for every window of one market: `ends` (rows of its FeatureHistory) and
    `x` = [embedding, last-step scaled features, any columns the history holds after the 46 (the
    walk-forward's context block)]; computed once per encoder."""

    ends: np.ndarray
    x: np.ndarray  # (len(ends), embedding + 46) float64
    last_step: np.ndarray  # (len(ends), 46): the tabular baseline's input

    def rows(self, wanted: np.ndarray) -> np.ndarray:
        """Positions in `ends` of the window ends `wanted` (all present)."""
        return np.searchsorted(self.ends, wanted)


def head_inputs(fit: EncoderFit, data: MarketData, batch: int = 8192) -> HeadInputs:
    ends = data.history.window_ends
    embeddings, last, extra = [], [], []
    with torch.inference_mode():
        for i in range(0, len(ends), batch):
            raw = data.history.windows(ends[i:i + batch])
            windows = fit.scaler.transform(raw[..., :N_FEATURES])
            embeddings.append(fit.encoder.embed(torch.from_numpy(np.ascontiguousarray(windows))).numpy())
            last.append(windows[:, -1, :])
            extra.append(raw[:, -1, N_FEATURES:])
    if not embeddings:
        size = fit.encoder.config.embedding_size + data.history.values.shape[1]
        return HeadInputs(ends, np.zeros((0, size)), np.zeros((0, len(FEATURE_NAMES))))
    emb, tab, ctx = np.concatenate(embeddings), np.concatenate(last), np.concatenate(extra)
    return HeadInputs(ends, np.hstack([emb, tab, ctx]).astype(np.float64), tab.astype(np.float64))


def stacked(inputs: Sequence[HeadInputs], datasets: Sequence[MarketData], splits, split: int):
    """(x, y, returns) of one split, all markets stacked."""
    xs, ys, rs = [], [], []
    for hi, d, parts in zip(inputs, datasets, splits):
        ends = parts[split]
        xs.append(hi.x[hi.rows(ends)])
        ys.append(d.labels[ends])
        rs.append(d.returns[ends])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(rs)


def raw_proba(head: lgb.Booster, x: np.ndarray) -> np.ndarray:
    p = np.asarray(head.predict(x, num_threads=1), dtype=np.float64).reshape(len(x), 3)
    return p / p.sum(axis=1, keepdims=True)


def fit_head_and_calibration(inputs: Sequence[HeadInputs], datasets: Sequence[MarketData], splits,
                             config: TrainConfig, plan: SplitPlan) -> tuple[lgb.Booster, Calibration]:
    """The global head on head_train rows (early-stopped on validation) and its calibration on
    validation rows, with the class returns of head_train rows."""
    xh, yh, rh = stacked(inputs, datasets, splits, HEAD_TRAIN)
    xv, yv, _ = stacked(inputs, datasets, splits, VALIDATION)
    head = fit_booster(xh, yh, xv, yv, config)
    fitted_on = {"rows": int(len(yv)), "from": plan.validation_start.isoformat(), "to": plan.test_start.isoformat()}
    calibration = fit_calibration(raw_proba(head, xv), yv, class_mean_returns(rh, yh), config.calibration, fitted_on)
    return head, calibration
