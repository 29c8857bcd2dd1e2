"""The user guide's API: `HybridPredictor().infer(window)` -> MLSignal, for one model directory or the
shipped ones (through MultiCoinModelManager, which resolves a market's model)."""
from __future__ import annotations

import logging
from pathlib import Path

from core.data.features import FeatureWindow
from models.hybrid import METADATA_FILE, HybridModel, ModelLoadError, check_sequences
from models.manager import MultiCoinModelManager
from models.signal import DEFAULT_BUY_THRESHOLD, DEFAULT_SELL_THRESHOLD, MLSignal

log = logging.getLogger(__name__)


class HybridPredictor:
    """User-guide API: `HybridPredictor().infer(window)` -> MLSignal.

    With no `model_dir`, each window's market gets the shipped model for that market (or the global
    fallback). A missing or corrupt model never raises here: it yields a failed signal (HOLD) whose
    `error` says why. A malformed input does raise ValueError, since that is the caller's bug.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        buy_threshold: float = DEFAULT_BUY_THRESHOLD,
        sell_threshold: float = DEFAULT_SELL_THRESHOLD,
    ):
        self._single_dir = Path(model_dir) if model_dir is not None and (Path(model_dir) / METADATA_FILE).exists() else None
        self._manager = None if self._single_dir else MultiCoinModelManager(model_dir)
        self._model: HybridModel | None = None
        self.buy_threshold = buy_threshold
        self.sell_threshold = sell_threshold

    def infer(self, window: FeatureWindow | dict) -> MLSignal:
        market = window["market"]
        sequence = check_sequences(window["sequence"])
        timestamp = window["timestamp"]
        if self._manager is not None:  # the manager predicts; the thresholds are the caller's to apply
            signal = self._manager.predict(market, sequence[0], timestamp=timestamp)
            return signal.with_thresholds(self.buy_threshold, self.sell_threshold)
        try:
            if self._model is None:
                self._model = HybridModel.load(self._single_dir)
            proba = self._model.predict_proba(sequence)[0]
        except ModelLoadError as exc:
            log.error("model for %s unavailable: %s", market, exc)
            return MLSignal.failed(market, str(exc), timestamp)
        return MLSignal.from_probabilities(
            market, proba, buy_threshold=self.buy_threshold, sell_threshold=self.sell_threshold,
            timestamp=timestamp, model_id=self._model.model_id,
        )
