"""Is a freshly trained model better than the one serving? Train a challenger, then judge both on the
most recent period, which neither learnt from.

The recent period is the last `recent_days` before `until`. The challenger is trained by the
walk-forward's recipe (models/training.py with a split plan) on everything before it: the LSTM on
the oldest candles, the head on the `head_months` after, calibration and early stopping on the
`validation_months` after that; the plan purges horizon + window candles at each boundary, so no
label of the training reaches into the recent period. Both models then trade that period through the
real cycle (core.trading.backtest) with the settings in force, and are scored as the walk-forward
scores a validation slice (core.research.selection.score: Sharpe, less penalties for trading or
being invested too little). The challenger is better only with a strictly higher score.

A serving model whose training data reaches into the recent period (the shipped models in a replay of
old candles, say) is judged in sample there, which flatters it: the report says so, and the
challenger still has to beat it.
"""
from __future__ import annotations

import json
import logging
import resource
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.data.candles import load_candle_csv, resolve_candle_file, write_candle_csv
from core.data.features import SEQUENCE_LENGTH
from core.research.selection import SliceScore, score
from core.trading.backtest import run_backtest
from core.trading.types import RiskSettings
from models.dataset import SplitPlan, load_market, out_of_sample_windows
from models.labels import LabelSpec
from models.manager import MultiCoinModelManager
from models.metrics import classification_metrics

log = logging.getLogger(__name__)

MIN_RECENT_WINDOWS = 48


@dataclass(frozen=True)
class ChallengerSpec:
    """What the trainer process is asked to do (written as JSON by core.service.retraining)."""

    data_dir: str
    markets: tuple[str, ...]
    until: str  # ISO-8601: no candle opening at or after this instant is read (a replay's simulated now)
    serving_dir: str
    out_dir: str  # the staging directory the challenger's artifacts are written into
    label: dict = field(default_factory=lambda: LabelSpec().to_dict())
    decision_defaults: dict = field(default_factory=dict)  # the serving model's, carried into the challenger
    risk: dict = field(default_factory=dict)  # the settings in force (RiskSettings fields), for both backtests
    recent_days: int = 30
    validation_months: int = 3
    head_months: int = 6
    train: dict = field(default_factory=dict)  # TrainConfig overrides (tests train a tiny model)
    interval: str = "1h"
    interval_seconds: int = 3600
    start_krw: float = 1_000_000
    slippage: float = 0.0005
    min_exposure: float = 0.10

    @classmethod
    def from_json(cls, text: str) -> "ChallengerSpec":
        data = json.loads(text)
        data["markets"] = tuple(data["markets"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _truncate(spec: ChallengerSpec, work: Path) -> tuple[Path, pd.Timestamp, pd.Timestamp]:
    """Copies of the markets' candles up to `until` (nothing later is ever read), and their span."""
    until = pd.Timestamp(spec.until)
    work.mkdir(parents=True, exist_ok=True)
    first, last = None, None
    for market in spec.markets:
        candles = load_candle_csv(resolve_candle_file(Path(spec.data_dir), market, spec.interval))
        candles = candles[candles.index + pd.Timedelta(seconds=spec.interval_seconds) <= until]
        if candles.empty:
            raise ValueError(f"{market}: no candle closed before {until.isoformat()} in {spec.data_dir}")
        write_candle_csv(candles, work / f"{market}_{spec.interval}.csv")
        first = candles.index[0] if first is None else min(first, candles.index[0])
        last = candles.index[-1] if last is None else max(last, candles.index[-1])
    return work, first, last


def recent_plan(spec: ChallengerSpec, last: pd.Timestamp, label: LabelSpec) -> SplitPlan:
    end = last + pd.Timedelta(seconds=spec.interval_seconds)
    test_start = (end - pd.Timedelta(days=spec.recent_days)).floor("h")
    validation_start = test_start - pd.DateOffset(months=spec.validation_months)
    return SplitPlan(validation_start - pd.DateOffset(months=spec.head_months), validation_start, test_start,
                     label.horizon, spec.interval_seconds)


def judge(model_dir: Path, data: Path, markets: Sequence[str], plan: SplitPlan, label: LabelSpec,
          spec: ChallengerSpec, risk: RiskSettings) -> dict:
    """One model on the recent period: the trading figures, the score, and the classification metrics
    of the windows wholly inside it."""
    manager = MultiCoinModelManager(model_dir, markets)
    start = plan.test_start + pd.Timedelta(seconds=spec.interval_seconds * SEQUENCE_LENGTH)
    result = run_backtest(data, markets, manager, interval=spec.interval, interval_seconds=spec.interval_seconds,
                          start_krw=spec.start_krw, settings=risk, slippage=spec.slippage, start=start)
    m = result.metrics
    ys, probas, returns = [], [], []
    for market in markets:
        d = load_market(data, market, spec.interval, spec.interval_seconds, label)
        ends = out_of_sample_windows(d, plan.test_start, spec.interval_seconds)
        if len(ends) == 0:
            continue
        model = manager.get_model(market)
        scaled = model.scale(d.history.windows(ends))
        probas.append(model.head_proba(model.embed(scaled), scaled))
        ys.append(d.labels[ends])
        returns.append(d.returns[ends])
    classes = classification_metrics(np.concatenate(ys), np.concatenate(probas), np.concatenate(returns)) \
        if ys else {}
    return {
        "model_id": manager.get_model(markets[0]).model_id,
        "score": score([SliceScore.of(m)], spec.min_exposure),
        "total_return": m["total_return"], "sharpe": m["sharpe"], "max_drawdown": m["max_drawdown"],
        "trades": m["trades"], "exposure": m["exposure"], "buy_and_hold": result.buy_and_hold_metrics["total_return"],
        "log_loss": classes.get("log_loss"), "roc_auc_buy": classes.get("roc_auc_buy"),
        "rows": classes.get("rows", 0),
    }


def trained_until(model_dir: Path) -> pd.Timestamp | None:
    """The last candle any of the model's training splits reached (its test split excluded)."""
    try:
        meta = json.loads((Path(model_dir) / "global" / "model_metadata.json").read_text())
        test_start = pd.Timestamp(meta["splits"]["test_start"])
        last = max(pd.Timestamp(s["last"]) for s in meta["sources"].values())
        return min(test_start, last)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def name_models(out: Path, model_id: str) -> None:
    """A challenger's own name (`train` names models by the day only: two versions of one day would
    read alike); per-market heads get the market appended."""
    for meta_path in out.glob("*/model_metadata.json"):
        meta = json.loads(meta_path.read_text())
        meta["model_id"] = model_id if meta.get("scope") == "global" else f"{model_id}-{meta.get('scope')}"
        meta_path.write_text(json.dumps(meta, indent=2, default=str))


def run(spec: ChallengerSpec) -> dict:
    """Train the challenger into `spec.out_dir` and judge both models; the report as a dict. Raises
    ValueError (a one-line reason) when there is too little history to train or to judge."""
    from models.fit import TrainConfig
    from models.lstm import EncoderConfig
    from models.training import train_models

    started = time.perf_counter()
    label = LabelSpec(**{k: spec.label[k] for k in ("horizon", "threshold", "fee_rate") if k in spec.label})
    out = Path(spec.out_dir)
    data, first, last = _truncate(spec, out.parent / (out.name + "-data"))
    try:
        plan = recent_plan(spec, last, label)
        overrides = dict(spec.train)
        if "encoder" in overrides:
            overrides["encoder"] = EncoderConfig(**overrides["encoder"])
        config = TrainConfig(**overrides)
        extra = {"decision_defaults": spec.decision_defaults, "decision_label": label.to_dict(),
                 "retrained": {"until": spec.until, "recent_days": spec.recent_days,
                               "validation_months": spec.validation_months, "head_months": spec.head_months}}
        report = train_models(data, spec.markets, out, interval=spec.interval, interval_seconds=spec.interval_seconds,
                              spec=label, config=config, progress=False, plan=plan, extra_metadata=extra)
        name_models(out, f"retrained-{pd.Timestamp(spec.until):%Y%m%dT%H%M}")
        training_seconds = time.perf_counter() - started
        risk = RiskSettings(**spec.risk) if spec.risk else RiskSettings()
        challenger = judge(out, data, spec.markets, plan, label, spec, risk)
        serving = judge(Path(spec.serving_dir), data, spec.markets, plan, label, spec, risk)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if challenger["rows"] < MIN_RECENT_WINDOWS:
        raise ValueError(f"only {challenger['rows']} labelled windows in the recent {spec.recent_days} days: too few "
                         f"to judge a challenger")
    seen = trained_until(Path(spec.serving_dir))
    in_sample = seen is not None and seen > plan.test_start
    better = challenger["score"] > serving["score"] + 1e-9
    validation = {m: c.get("hybrid_global", {}) for m, c in report.markets.items()}
    return {
        "model_id": challenger["model_id"], "markets": list(spec.markets),
        "data_first": first.isoformat(), "data_last": last.isoformat(),
        "parameters": {"label": label.to_dict(), "decision_defaults": spec.decision_defaults,
                       "training_config": config.to_dict(), "splits": plan.to_dict(),
                       "recent_days": spec.recent_days, "validation_months": spec.validation_months,
                       "head_months": spec.head_months, "risk": spec.risk},
        "validation": validation,
        "recent": {"period": [plan.test_start.isoformat(), (last + pd.Timedelta(seconds=spec.interval_seconds)).isoformat()],
                   "challenger": challenger, "serving": serving, "serving_in_sample": in_sample},
        "better": better,
        "training_seconds": round(training_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
