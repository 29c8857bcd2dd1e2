"""The sequence encoder's shape, and its forward pass in NumPy for serving (no torch at run time).

The LSTM (PyTorch's gate order: input, forget, cell, output) runs over the 24 steps; its last hidden
state goes through a Linear layer and tanh to the embedding the head reads. Training builds and fits
the torch module (models/lstm.py); `train` then saves its weights as `lstm.npz` too, and serving
loads those. A test holds the two forward passes equal within 1e-6.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class EncoderConfig:
    n_features: int = 46
    hidden_size: int = 64
    num_layers: int = 1
    embedding_size: int = 32
    dropout: float = 0.2
    n_classes: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # = 1 / (1 + exp(-x)), without overflow warnings


class NumpyEncoder:
    """The embedding half of SequenceEncoder, from its weights: `embed` (m, 24, 46) -> (m, 32)."""

    def __init__(self, config: EncoderConfig, weights: dict[str, np.ndarray]):
        self.config = config
        self.weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
        missing = [k for k in self.names(config) if k not in self.weights]
        if missing:
            raise ValueError(f"encoder weights lack {', '.join(missing)}")
        for layer in range(config.num_layers):
            w = self.weights[f"lstm.weight_hh_l{layer}"]
            if w.shape != (4 * config.hidden_size, config.hidden_size):
                raise ValueError(f"lstm.weight_hh_l{layer} has shape {w.shape}, not (4 x hidden, hidden)")
        if self.weights["project.weight"].shape != (config.embedding_size, config.hidden_size):
            raise ValueError(f"project.weight has shape {self.weights['project.weight'].shape}")

    @staticmethod
    def names(config: EncoderConfig) -> list[str]:
        names = []
        for layer in range(config.num_layers):
            names += [f"lstm.weight_ih_l{layer}", f"lstm.weight_hh_l{layer}", f"lstm.bias_ih_l{layer}",
                      f"lstm.bias_hh_l{layer}"]
        return names + ["project.weight", "project.bias"]

    @classmethod
    def from_state_dict(cls, config: EncoderConfig, state: dict) -> "NumpyEncoder":
        return cls(config, {k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
                            for k, v in state.items() if k in cls.names(config)})

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:  # np.savez would add .npz to a name without it
            np.savez(handle, **self.weights)

    @classmethod
    def load(cls, config: EncoderConfig, path: Path) -> "NumpyEncoder":
        with np.load(path, allow_pickle=False) as data:
            return cls(config, {k: data[k] for k in data.files})

    def embed(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        m, steps, _ = x.shape
        size = self.config.hidden_size
        sequence = x
        h = np.zeros((m, size), np.float32)
        for layer in range(self.config.num_layers):
            w_ih, w_hh = self.weights[f"lstm.weight_ih_l{layer}"], self.weights[f"lstm.weight_hh_l{layer}"]
            bias = self.weights[f"lstm.bias_ih_l{layer}"] + self.weights[f"lstm.bias_hh_l{layer}"]
            inputs = sequence.reshape(m * steps, -1) @ w_ih.T
            inputs = (inputs + bias).reshape(m, steps, 4 * size)
            h = np.zeros((m, size), np.float32)
            c = np.zeros((m, size), np.float32)
            outputs = np.empty((m, steps, size), np.float32) if layer + 1 < self.config.num_layers else None
            w_hh_t = np.ascontiguousarray(w_hh.T)
            for t in range(steps):
                gates = inputs[:, t] + h @ w_hh_t
                i, f = _sigmoid(gates[:, :size]), _sigmoid(gates[:, size:2 * size])
                g, o = np.tanh(gates[:, 2 * size:3 * size]), _sigmoid(gates[:, 3 * size:])
                c = f * c + i * g
                h = o * np.tanh(c)
                if outputs is not None:
                    outputs[:, t] = h
            if outputs is not None:
                sequence = outputs
        return np.tanh(h @ self.weights["project.weight"].T + self.weights["project.bias"]).astype(np.float32)
