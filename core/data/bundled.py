"""Where do the bundled candles live? The repository's data/ folder (market data, see data/README.md)."""
from __future__ import annotations

from pathlib import Path

BUNDLED_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
