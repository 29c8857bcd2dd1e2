"""HybridModel: a fitted LSTM encoder, a LightGBM head, a scaler and their metadata, saved and loaded.

A model directory holds `lstm.npz` (the encoder's weights as arrays, what serving reads: no torch),
`lstm.pt` (the same weights for torch, for retraining and older code), `lightgbm.txt`, `scaler.json`,
`model_metadata.json` and optionally `calibration.json`. Loading checks that the files exist, parse,
and were trained on the features this code builds; anything else is a ModelLoadError with a message
that names the file. A directory without `lstm.npz` (trained before it existed) is loaded with torch.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.features import FEATURE_NAMES, N_FEATURES, SEQUENCE_LENGTH
from models.calibration import Calibration
from models.encoder import EncoderConfig, NumpyEncoder
from models.errors import ModelLoadError  # noqa: F401 - raised here, caught by name from here too
from models.gbm import lgb
from models.scaler import FeatureScaler

log = logging.getLogger(__name__)

LSTM_FILE = "lstm.pt"
ENCODER_FILE = "lstm.npz"
HEAD_FILE = "lightgbm.txt"
SCALER_FILE = "scaler.json"
METADATA_FILE = "model_metadata.json"
CALIBRATION_FILE = "calibration.json"  # optional: without it probabilities are raw and there is no expected return
MODEL_FILES = (HEAD_FILE, SCALER_FILE, METADATA_FILE)  # and lstm.npz or lstm.pt


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
    encoder: object  # NumpyEncoder when loaded to serve; models.lstm.SequenceEncoder (torch) when just trained
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
        parts = []
        if isinstance(self.encoder, NumpyEncoder):
            for start in range(0, len(scaled), batch_size):
                parts.append(self.encoder.embed(scaled[start:start + batch_size]))
        else:  # a torch encoder, fresh from training (the walk-forward's folds)
            import torch

            self.encoder.eval()
            with torch.inference_mode():
                for start in range(0, len(scaled), batch_size):
                    batch = torch.from_numpy(np.ascontiguousarray(scaled[start:start + batch_size], dtype=np.float32))
                    parts.append(self.encoder.embed(batch).numpy())
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

    def predict_history(self, history, ends: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """predict_proba of the windows of a FeatureHistory ending at `ends`, each row scaled once rather
        than once per window it belongs to (the same numbers, 24 times less scaling)."""
        ends = np.asarray(ends)
        if len(ends) == 0:
            return np.zeros((0, 3))
        lo = int(ends.min()) - SEQUENCE_LENGTH + 1
        rows = self.scale(history.values[lo:int(ends.max()) + 1, :N_FEATURES])
        index = (ends - lo)[:, None] + np.arange(-SEQUENCE_LENGTH + 1, 1)[None, :]
        used = np.zeros(len(rows), dtype=bool)
        used[index.ravel()] = True
        if not np.isfinite(rows[used]).all():
            raise ValueError("Invalid sequence data: contains NaN or infinite values")
        last = rows[ends - lo]
        if isinstance(self.encoder, NumpyEncoder):
            embedding = self.encoder.embed_rows(np.where(used[:, None], rows, 0.0), index)
        else:
            embedding = self.embed(rows[index])
        return self.head_proba(embedding, last[:, None, :], calibrated)

    def expected_returns(self, proba: np.ndarray) -> np.ndarray | None:
        """The forward return each row's (calibrated) probabilities promise; None without a calibration."""
        return None if self.calibration is None else self.calibration.expected_return(proba)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(self.encoder, NumpyEncoder):
            self.encoder.save(directory / ENCODER_FILE)
            (directory / LSTM_FILE).unlink(missing_ok=True)
        else:
            import torch

            state = self.encoder.state_dict()
            torch.save(state, directory / LSTM_FILE)
            NumpyEncoder.from_state_dict(self.encoder.config, state).save(directory / ENCODER_FILE)
        self.head.save_model(str(directory / HEAD_FILE))
        self.scaler.save(directory / SCALER_FILE)
        if self.calibration is not None:
            self.calibration.save(directory / CALIBRATION_FILE)
        else:
            (directory / CALIBRATION_FILE).unlink(missing_ok=True)
        self.encoder_key = file_digest(directory / ENCODER_FILE)
        metadata = dict(self.metadata)
        metadata["encoder"] = self.encoder.config.to_dict()
        metadata["lstm_sha256_16"] = self.encoder_key
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))
        self.metadata = metadata

    @classmethod
    def load(cls, directory: Path, encoder_cache: dict[str, object] | None = None) -> "HybridModel":
        directory = Path(directory)
        if not directory.is_dir():
            raise ModelLoadError(f"model directory {directory} does not exist")
        missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
        if not (directory / ENCODER_FILE).is_file() and not (directory / LSTM_FILE).is_file():
            missing.insert(0, ENCODER_FILE)
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
        weights = directory / ENCODER_FILE if (directory / ENCODER_FILE).is_file() else directory / LSTM_FILE
        key = file_digest(weights)
        encoder = (encoder_cache or {}).get(key)
        if encoder is None:
            encoder = _load_encoder(weights, metadata)
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


def _load_encoder(path: Path, metadata: dict) -> NumpyEncoder:
    """The encoder from `lstm.npz` (NumPy only) or, for a model saved before it existed, `lstm.pt` (torch)."""
    try:
        config = EncoderConfig(**metadata.get("encoder", {}))
        if path.suffix == ".npz":
            return NumpyEncoder.load(config, path)
        import torch

        return NumpyEncoder.from_state_dict(config, torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # numpy and torch raise many types for a damaged file; all mean the same here
        raise ModelLoadError(f"{path} is corrupt or does not fit the encoder ({exc.__class__.__name__})") from None
