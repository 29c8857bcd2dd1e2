"""Where do the shipped models live? Inside the package, so that an installed autotrader finds them."""
from __future__ import annotations

from pathlib import Path

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "artifacts"
