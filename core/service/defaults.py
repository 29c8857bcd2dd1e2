"""Which decision parameters does a model come with? The defaults its walk-forward chose, from its
metadata (`decision_defaults`), over the built-in RiskSettings; settings a user changed win over both."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from core.trading.types import RiskSettings
from models.hybrid import METADATA_FILE
from models.manager import GLOBAL_MODEL

log = logging.getLogger(__name__)


def chosen_defaults(model_dir: Path) -> dict:
    """The decision parameters the model's walk-forward chose (name -> value); {} when it has none."""
    path = Path(model_dir) / GLOBAL_MODEL / METADATA_FILE
    try:
        chosen = json.loads(path.read_text()).get("decision_defaults") or {}
    except (OSError, ValueError):
        return {}  # a missing or broken model says so where it is loaded
    return chosen if isinstance(chosen, dict) else {}


def model_defaults(model_dir: Path, base: RiskSettings = RiskSettings()) -> RiskSettings:
    risk = base
    for name, value in chosen_defaults(model_dir).items():
        try:
            risk = risk.with_value(name, str(value))
        except ValueError as exc:
            log.warning("the model's default %s=%s is ignored: %s", name, value, exc)
    return risk
