"""Out-of-sample evaluation of a model directory, beside baselines on the very same rows.

Only windows that lie wholly after the model's recorded `test_start` are scored, whatever data set
is given, so a model is never judged on candles it (or its early stopping) saw.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from models.dataset import load_market, out_of_sample_windows
from models.gbm import lgb
from models.labels import LabelSpec
from models.manager import MultiCoinModelManager
from models.metrics import classification_metrics
from models.training import BASELINE_DIR, TABULAR_BASELINE_FILE

MIN_ROWS = 30


class EvaluationError(ValueError):
    pass


def evaluate_model_dir(model_dir: Path, data_dir: Path, markets: Sequence[str], *, interval: str = "1h",
                       interval_seconds: int = 3600, buy_threshold: float = 0.55, sell_threshold: float = 0.55) -> dict:
    manager = MultiCoinModelManager(model_dir, markets)
    baseline_path = Path(model_dir) / BASELINE_DIR / TABULAR_BASELINE_FILE
    baseline = lgb.Booster(model_file=str(baseline_path)) if baseline_path.is_file() else None
    report: dict = {"meta": {"model_dir": str(model_dir), "data_dir": str(data_dir), "thresholds":
                             {"buy": buy_threshold, "sell": sell_threshold}}, "markets": {}, "baselines": {}, "skipped": {}}
    for market in markets:
        model = manager.get_model(market)
        meta = model.metadata
        spec = LabelSpec(**{k: meta["label"][k] for k in ("horizon", "threshold", "fee_rate")})
        test_start = pd.Timestamp(meta["splits"]["test_start"])
        report["meta"].setdefault("test_start", test_start.isoformat())
        report["meta"].setdefault("label", meta["label"])
        data = load_market(Path(data_dir), market, interval, interval_seconds, spec)
        ends = out_of_sample_windows(data, test_start, interval_seconds)
        if len(ends) < MIN_ROWS:
            report["skipped"][market] = f"only {len(ends)} labelled windows after {test_start.isoformat()} in {data.source.name}"
            continue
        windows = data.history.windows(ends)
        scaled = model.scale(windows)
        proba = model.head_proba(model.embed(scaled), scaled)
        y, returns = data.labels[ends], data.returns[ends]
        entry = classification_metrics(y, proba, returns, buy_threshold, sell_threshold)
        entry.update({
            "model_id": model.model_id,
            "model_scope": meta.get("scope"),
            "source": data.source.name,
            "period": [data.history.index[ends[0]].isoformat(), data.history.index[ends[-1]].isoformat()],
        })
        report["markets"][market] = entry
        prior = np.asarray(meta["class_prior"], dtype=np.float64)
        baselines = {"class_prior": classification_metrics(y, np.tile(prior, (len(y), 1)), returns, buy_threshold, sell_threshold)}
        if baseline is not None:
            baselines["lightgbm_last_step"] = classification_metrics(
                y, baseline.predict(scaled[:, -1, :].astype(np.float64)), returns, buy_threshold, sell_threshold)
        report["baselines"][market] = baselines
    if not report["markets"]:
        raise EvaluationError("no market had enough out-of-sample rows: "
                              + "; ".join(f"{m}: {r}" for m, r in report["skipped"].items())
                              + ". A model trained on every candle it was given (train --validation-months, as the "
                              "shipped one) is judged by `autotrader walkforward`, or by evaluate on later candles")
    return report


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report_table(report: dict) -> str:
    """Markdown table: the model and its baselines per market, plus the signals it would act on."""
    head = ("| market | model | rows | accuracy | macro-F1 | AUC buy | AUC sell | log-loss | Brier | "
            "BUY signals | BUY hit | BUY mean net | SELL signals | SELL hit |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for market, entry in report["markets"].items():
        rows = [(f"hybrid ({entry['model_scope']})", entry)]
        rows += [(name.replace("_", " "), m) for name, m in report["baselines"].get(market, {}).items()]
        for name, m in rows:
            s = m["signals"]
            lines.append(
                f"| {market} | {name} | {m['rows']} | {_fmt(m['accuracy'])} | {_fmt(m['macro_f1'])} | "
                f"{_fmt(m['roc_auc_buy'])} | {_fmt(m['roc_auc_sell'])} | {_fmt(m['log_loss'], 4)} | {_fmt(m['brier'], 4)} | "
                f"{s['buy']['count']} | {_fmt(s['buy']['hit_rate'])} | {_fmt(s['buy']['mean_net_return'], 4)} | "
                f"{s['sell']['count']} | {_fmt(s['sell']['hit_rate'])} |"
            )
    for market, reason in report.get("skipped", {}).items():
        lines.append(f"| {market} | skipped: {reason} |" + " |" * 12)
    return "\n".join(lines)
