"""Standardisation of features, fitted on a training split only and saved as JSON beside the model."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLIP = 8.0  # z-scores beyond this are clipped: one wild candle must not saturate the LSTM


@dataclass(frozen=True)
class FeatureScaler:
    feature_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray, feature_names) -> "FeatureScaler":
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(feature_names) or len(rows) < 2:
            raise ValueError(f"scaler needs (n >= 2, {len(feature_names)}) rows, got {rows.shape}")
        std = rows.std(axis=0)
        return cls(tuple(feature_names), rows.mean(axis=0), np.where(std > 1e-12, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(..., n_features) -> float32 z-scores, clipped; computed in place on one new array."""
        z = np.array(x, dtype=np.float32, copy=True)
        z -= self.mean.astype(np.float32)
        z /= self.std.astype(np.float32)
        return np.clip(z, -CLIP, CLIP, out=z)

    def save(self, path: Path) -> None:
        Path(path).write_text(
            json.dumps({"feature_names": list(self.feature_names), "mean": self.mean.tolist(), "std": self.std.tolist()})
        )

    @classmethod
    def load(cls, path: Path) -> "FeatureScaler":
        data = json.loads(Path(path).read_text())
        scaler = cls(tuple(data["feature_names"]), np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64))
        if not (len(scaler.feature_names) == scaler.mean.shape[0] == scaler.std.shape[0]):
            raise ValueError("scaler.json: feature_names, mean and std differ in length")
        return scaler
