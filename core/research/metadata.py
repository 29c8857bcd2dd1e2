"""What does a shipped model say about how it was chosen? The walk-forward's summary and defaults in
its metadata, and the split of the final training run (the walk-forward's recipe at the end of the data)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from models.dataset import SplitPlan, load_market
from models.labels import LabelSpec

SUMMARY_KEYS = ("config", "overall", "baselines", "periods", "targets", "defaults", "seconds")


def walkforward_metadata(report_path: Path) -> dict:
    """`decision_defaults` (name -> value, read by core.service.defaults) and a `walkforward` summary."""
    report = json.loads(Path(report_path).read_text())
    missing = [k for k in ("overall", "defaults", "folds") if k not in report]
    if missing:
        raise ValueError(f"{report_path} is not a walkforward --json report (no {', '.join(missing)})")
    defaults = {k: v for k, v in report["defaults"]["settings"].items() if k != "label"}
    summary = {k: report[k] for k in SUMMARY_KEYS if k in report}
    summary["folds"] = [{k: f[k] for k in ("test", "chosen", "auc", "strategy")} for f in report["folds"]]
    return {"decision_defaults": defaults, "walkforward": summary, "decision_label": report["defaults"]["label"]}


def final_plan(data_dir: Path, markets: Sequence[str], spec: LabelSpec, interval_seconds: int, validation_months: int,
               head_months: int) -> SplitPlan:
    """Train on everything: the last `validation_months` calibrate and stop the head early, the
    `head_months` before them train the head, everything earlier the LSTM; no test split is left."""
    last = max(load_market(data_dir, m, "1h", interval_seconds, spec).last for m in markets)
    end = last + pd.Timedelta(seconds=interval_seconds)
    validation_start = end - pd.DateOffset(months=validation_months)
    return SplitPlan(validation_start - pd.DateOffset(months=head_months), validation_start, end, spec.horizon,
                     interval_seconds)
