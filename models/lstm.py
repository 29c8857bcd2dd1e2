"""The sequence encoder: an LSTM over (24, 46) whose last hidden state becomes a 32-value embedding."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


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


class SequenceEncoder(nn.Module):
    """LSTM -> last hidden state -> Linear -> tanh (the embedding) -> Linear (3 logits, training only)."""

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(
            config.n_features,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.project = nn.Linear(config.hidden_size, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classify = nn.Linear(config.embedding_size, config.n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        return torch.tanh(self.project(h_n[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.dropout(self.embed(x)))
