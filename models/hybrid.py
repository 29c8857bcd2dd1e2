"""HybridModel: a fitted LSTM encoder, a LightGBM head, a scaler and their metadata, saved and loaded.

A model directory holds `lstm.pt`, `lightgbm.txt`, `scaler.json` and `model_metadata.json`. Loading
checks that the files exist, parse, and were trained on the features this code builds; anything else
is a ModelLoadError with a message that names the file.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import torch

from core.data.features import FEATURE_NAMES, N_FEATURES, SEQUENCE_LENGTH
from models.calibration import Calibration
from models.errors import ModelLoadError  # noqa: F401 - raised here, caught by name from here too
from models.lstm import EncoderConfig, SequenceEncoder
from models.scaler import FeatureScaler

log = logging.getLogger(__name__)

LSTM_FILE = "lstm.pt"
HEAD_FILE = "lightgbm.txt"
SCALER_FILE = "scaler.json"
METADATA_FILE = "model_metadata.json"
CALIBRATION_FILE = "calibration.json"  # optional: without it probabilities are raw and there is no expected return
MODEL_FILES = (LSTM_FILE, HEAD_FILE, SCALER_FILE, METADATA_FILE)


def check_sequences(sequences) -> np.ndarray:
    """(24, 46) or (m, 24, 46) finite numbers, else ValueError naming the shape received."""
    x = np.asarray(sequences, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (SEQUENCE_LENGTH, N_FEATURES):
        shape = tuple(np.shape(sequences))
        raise ValueError(f"Invalid sequence data: expected ({SEQUENCE_LENGTH}, {N_FEATURES}), got {shape}")
    if not np.isfinite(x).all():
        raise ValueError("Invalid sequence data: contains NaN or infinite values")
    return x


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@dataclass
class HybridModel:
    encoder: SequenceEncoder
    head: lgb.Booster
    scaler: FeatureScaler
    metadata: dict = field(default_factory=dict)
    encoder_key: str = ""  # digest of the LSTM weights: models sharing it share one forward pass
    calibration: Calibration | None = None  # fitted on validation rows (models/calibration.py)

    @property
    def model_id(self) -> str:
        return str(self.metadata.get("model_id", "unsaved"))

    def scale(self, sequences: np.ndarray) -> np.ndarray:
        return self.scaler.transform(sequences)

    def embed(self, scaled: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        self.encoder.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(scaled), batch_size):
                parts.append(self.encoder.embed(torch.from_numpy(np.ascontiguousarray(scaled[start : start + batch_size]))).numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self.encoder.config.embedding_size), np.float32)

    def head_proba(self, embedding: np.ndarray, scaled: np.ndarray, calibrated: bool = True,
                   extra: np.ndarray | None = None) -> np.ndarray:
        """`extra`: more head inputs per row after the last step's features (the walk-forward's
        context block, core/research/context.py); the shipped models have none."""
        parts = [embedding, scaled[:, -1, :]] + ([extra] if extra is not None and extra.shape[1] else [])
        tabular = np.hstack(parts).astype(np.float64)
        proba = np.asarray(self.head.predict(tabular, num_threads=1), dtype=np.float64).reshape(len(tabular), 3)
        proba = proba / proba.sum(axis=1, keepdims=True)
        if calibrated and self.calibration is not None:
            return self.calibration.apply(proba)
        return proba

    def predict_proba(self, sequences, calibrated: bool = True) -> np.ndarray:
        """Unscaled (m, 24, 46) or (24, 46) -> (m, 3) probabilities in SELL, HOLD, BUY order (calibrated
        when the model has a calibration, unless `calibrated=False`)."""
        scaled = self.scale(check_sequences(sequences))
        return self.head_proba(self.embed(scaled), scaled, calibrated)

    def expected_returns(self, proba: np.ndarray) -> np.ndarray | None:
        """The forward return each row's (calibrated) probabilities promise; None without a calibration."""
        return None if self.calibration is None else self.calibration.expected_return(proba)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.encoder.state_dict(), directory / LSTM_FILE)
        self.head.save_model(str(directory / HEAD_FILE))
        self.scaler.save(directory / SCALER_FILE)
        if self.calibration is not None:
            self.calibration.save(directory / CALIBRATION_FILE)
        else:
            (directory / CALIBRATION_FILE).unlink(missing_ok=True)
        self.encoder_key = file_digest(directory / LSTM_FILE)
        metadata = dict(self.metadata)
        metadata["encoder"] = self.encoder.config.to_dict()
        metadata["lstm_sha256_16"] = self.encoder_key
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))
        self.metadata = metadata

    @classmethod
    def load(cls, directory: Path, encoder_cache: dict[str, SequenceEncoder] | None = None) -> "HybridModel":
        directory = Path(directory)
        if not directory.is_dir():
            raise ModelLoadError(f"model directory {directory} does not exist")
        missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
        if missing:
            raise ModelLoadError(f"model directory {directory} lacks {', '.join(missing)}")
        try:
            metadata = json.loads((directory / METADATA_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{directory / METADATA_FILE} is not valid JSON ({exc})") from None
        names = tuple(metadata.get("feature_names", ()))
        if names != FEATURE_NAMES or metadata.get("sequence_length") != SEQUENCE_LENGTH:
            raise ModelLoadError(
                f"{directory} was trained on other features or sequence length; retrain it with `autotrader train`"
            )
        try:
            scaler = FeatureScaler.load(directory / SCALER_FILE)
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{directory / SCALER_FILE} is corrupt ({exc})") from None
        if scaler.feature_names != FEATURE_NAMES:
            raise ModelLoadError(f"{directory / SCALER_FILE} names other features than the model")
        key = file_digest(directory / LSTM_FILE)
        encoder = (encoder_cache or {}).get(key)
        if encoder is None:
            encoder = _load_encoder(directory, metadata)
            if encoder_cache is not None:
                encoder_cache[key] = encoder
        try:
            head = lgb.Booster(model_file=str(directory / HEAD_FILE))
        except lgb.basic.LightGBMError as exc:
            raise ModelLoadError(f"{directory / HEAD_FILE} is corrupt ({str(exc).splitlines()[0]})") from None
        expected_inputs = encoder.config.embedding_size + N_FEATURES
        if head.num_feature() != expected_inputs:
            raise ModelLoadError(f"{directory / HEAD_FILE} expects {head.num_feature()} inputs, not {expected_inputs}")
        calibration = None
        if (directory / CALIBRATION_FILE).is_file():
            try:
                calibration = Calibration.load(directory / CALIBRATION_FILE)
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
                raise ModelLoadError(f"{directory / CALIBRATION_FILE} is corrupt ({exc})") from None
        return cls(encoder, head, scaler, metadata, key, calibration)


def _load_encoder(directory: Path, metadata: dict) -> SequenceEncoder:
    try:
        config = EncoderConfig(**metadata.get("encoder", {}))
        encoder = SequenceEncoder(config)
        state = torch.load(directory / LSTM_FILE, map_location="cpu", weights_only=True)
        encoder.load_state_dict(state)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same here
        raise ModelLoadError(f"{directory / LSTM_FILE} is corrupt or does not fit the encoder ({exc.__class__.__name__})") from None
    encoder.eval()
    return encoder
