"""The sequence encoder for training: an LSTM over (24, 46) whose last hidden state becomes a 32-value
embedding (torch). Serving runs the same forward pass in NumPy (models/encoder.py)."""
from __future__ import annotations

import torch
from torch import nn

from models.encoder import EncoderConfig  # noqa: F401 - the shape lives beside its NumPy forward pass


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
