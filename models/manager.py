"""Which model serves which market? MultiCoinModelManager: per-market models, a global fallback,
lazy loading, and batched prediction across markets (one LSTM pass per shared encoder)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.data.features import N_FEATURES, SEQUENCE_LENGTH, FeatureWindow
from core.data.markets import DEFAULT_MARKETS
from models.hybrid import HybridModel, ModelLoadError, check_sequences
from models.shipped import SHIPPED_MODEL_DIR
from models.signal import MLSignal

log = logging.getLogger(__name__)

GLOBAL_MODEL = "global"


def default_model_root() -> Path:
    return Path(os.environ.get("MODEL_DIR") or SHIPPED_MODEL_DIR)


@dataclass(frozen=True)
class LoadReport:
    loaded: tuple[str, ...]
    failed: dict
    requested: int

    def __str__(self) -> str:
        text = f"Loaded {len(self.loaded)}/{self.requested} models"
        if self.failed:
            text += "; failed: " + "; ".join(f"{m}: {e}" for m, e in self.failed.items())
        return text


class MultiCoinModelManager:
    def __init__(self, model_dir: str | Path | None = None, markets: Iterable[str] | None = None):
        self.root = Path(model_dir) if model_dir is not None else default_model_root()
        self.markets = tuple(markets) if markets is not None else DEFAULT_MARKETS
        self._models: dict[Path, HybridModel] = {}
        self._encoders: dict = {}

    def model_path(self, market: str) -> Path:
        """The market's own model directory if it has one, else the global fallback."""
        own = self.root / market
        return own if own.is_dir() else self.root / GLOBAL_MODEL

    def uses_fallback(self, market: str) -> bool:
        return self.model_path(market).name == GLOBAL_MODEL

    @property
    def loaded_paths(self) -> tuple[Path, ...]:
        return tuple(self._models)

    def get_model(self, market: str) -> HybridModel:
        """Load lazily (once) the model serving `market`; ModelLoadError if it cannot be used."""
        path = self.model_path(market)
        model = self._models.get(path)
        if model is None:
            model = HybridModel.load(path, self._encoders)
            self._models[path] = model
            log.info("loaded model %s for %s from %s", model.model_id, market, path)
        return model

    def load_model_for_market(self, market: str) -> bool:
        try:
            self.get_model(market)
            return True
        except ModelLoadError as exc:
            log.error("model for %s unavailable: %s", market, exc)
            return False

    def load_all_models(self) -> LoadReport:
        loaded, failed = [], {}
        for market in self.markets:
            try:
                self.get_model(market)
                loaded.append(market)
            except ModelLoadError as exc:
                failed[market] = str(exc)
        report = LoadReport(tuple(loaded), failed, len(self.markets))
        log.info("%s", report)
        return report

    def _signal(self, market: str, proba, timestamp, model: HybridModel) -> MLSignal:
        """The signal at the guide's default thresholds; whoever decides applies its own (the engine
        uses the settings in force, HybridPredictor its own)."""
        er = model.expected_returns(np.asarray(proba).reshape(1, 3))
        return MLSignal.from_probabilities(market, proba, timestamp=timestamp, model_id=model.model_id,
                                           expected_return=None if er is None else float(er[0]))

    def predict(self, market: str, sequence, timestamp: datetime | None = None) -> MLSignal:
        """One market's signal. Bad input shape raises ValueError; an unusable model gives a failed signal."""
        x = check_sequences(sequence)
        if x.shape[0] != 1:
            raise ValueError(f"Invalid sequence data: expected (24, 46), got {tuple(np.shape(sequence))}")
        try:
            model = self.get_model(market)
        except ModelLoadError as exc:
            return MLSignal.failed(market, str(exc), timestamp)
        return self._signal(market, model.predict_proba(x)[0], timestamp, model)

    def predict_batch(self, windows: Sequence[FeatureWindow]) -> dict[str, MLSignal]:
        """Signals for many markets: one encoder forward pass per distinct LSTM, then each head."""
        out: dict[str, MLSignal] = {}
        groups: dict[str, list[tuple[FeatureWindow, HybridModel]]] = {}
        for window in windows:
            try:
                model = self.get_model(window.market)
            except ModelLoadError as exc:
                out[window.market] = MLSignal.failed(window.market, str(exc), window.timestamp)
                continue
            groups.setdefault(model.encoder_key or str(id(model.encoder)), []).append((window, model))
        for members in groups.values():
            first = members[0][1]
            raw = check_sequences(np.stack([w.sequence for w, _ in members]))
            by_model: dict[int, list[int]] = {}
            for i, (_, model) in enumerate(members):
                by_model.setdefault(id(model), []).append(i)
            # every model sharing an encoder was trained with the same scaler (see training), but
            # scale per model anyway so that a hand-assembled directory stays correct
            scaled = np.empty_like(raw)
            for rows in by_model.values():
                scaled[rows] = members[rows[0]][1].scale(raw[rows])
            embedding = first.embed(scaled)
            for rows in by_model.values():
                model = members[rows[0]][1]
                proba = model.head_proba(embedding[rows], scaled[rows])
                for row, p in zip(rows, proba):
                    window = members[row][0]
                    out[window.market] = self._signal(window.market, p, window.timestamp, model)
        return {w.market: out[w.market] for w in windows if w.market in out}


def probe(model_dir: str | Path, markets: Sequence[str]) -> str | None:
    """Can this directory serve `markets`? Every model loads and predicts a probe window with finite
    probabilities summing to one. None when it can; else why not, in one line."""
    manager = MultiCoinModelManager(model_dir, markets)
    try:
        window = np.random.default_rng(0).normal(0.0, 1.0, (SEQUENCE_LENGTH, N_FEATURES))
        for market in markets:
            signal = manager.predict(market, window)
            proba = np.asarray([signal.buy_probability, signal.hold_probability, signal.sell_probability])
            if signal.error or not np.all(np.isfinite(proba)) or abs(proba.sum() - 1.0) > 1e-3:
                return f"{market}: the probe prediction failed ({signal.error or proba.tolist()})"
    except Exception as exc:  # a truncated file fails in many ways; each is "cannot serve"
        return f"{exc.__class__.__name__}: {exc}"
    return None
