"""The model alone: one batch of windows through the NumPy LSTM and the LightGBM head, by batch size
(serving imports no torch; NumPy's BLAS uses the threads it finds)."""
from __future__ import annotations

import time

import numpy as np

from bench.stats import Figure
from models.manager import MultiCoinModelManager

BATCHES = (1, 4, 100, 4096)


def inference_figures() -> list[Figure]:
    model = MultiCoinModelManager().get_model("KRW-BTC")
    rng = np.random.default_rng(0)
    figures = []
    for batch in BATCHES:
        x = rng.standard_normal((batch, 24, 46)).astype(np.float32)
        model.predict_proba(x)  # warm-up
        runs = max(5, min(200, 2000 // batch))
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            model.predict_proba(x)
            samples.append((time.perf_counter() - started) * 1000)
        figures.append(Figure(f"inference_batch_{batch}", tuple(samples), "ms", "",
                              f"{np.median(samples) / batch * 1000:.0f} us per window"))
    return figures
