"""`autotrader walkforward`: the whole recipe judged only out of sample, fold after fold.

For each fold (core.research.folds): fit the model on the past only (models/fit.py: LSTM once per
group of folds, head and calibration at every fold), simulate every candidate's decision parameters
on the fold's validation slice, choose on the validation slices so far (core.research.selection),
then trade the fold's test period with that choice through the same Simulation and trading cycle as
`autotrader backtest`, beside buy-and-hold, cash and the trend rule on the same candles. The test
periods are stitched into one equity curve (core.research.stitch).
"""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm import tqdm

from core.research.cluster import SerialRunner
from core.research.search import search
from core.research.selection import Candidate, SliceScore, choose
from core.research.stitch import FoldRun, summarise
from core.research.wf_tasks import Job, encoder_task, fold_task, prepared, test_task, trial_task
from core.trading.types import RiskSettings
from models.fit import TrainConfig
from models.hybrid import HybridModel
from models.labels import LabelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class WalkForwardConfig:
    start: pd.Timestamp = pd.Timestamp("2019-01-01", tz="UTC")
    test_months: int = 3
    validation_months: int = 6
    head_months: int = 12
    window: str = "expanding"
    train_months: int = 36
    lstm_every: int = 4
    labels: tuple[LabelSpec, ...] = (LabelSpec(),)
    train: TrainConfig = TrainConfig(patience=1)  # the LSTM's held-out loss is best after an epoch or two
    base: RiskSettings | None = None  # the settings the grid varies (default: one sleeve per market)
    start_krw: float = 1_000_000
    slippage: float = 0.0005
    min_exposure: float = 0.10
    trials: int = 0  # an Optuna search for the defaults (0: the grid's choice on every slice)
    interval: str = "1h"
    interval_seconds: int = 3600
    context: tuple[str, ...] = ()  # context groups for the head (core/research/context.py); () = the 46 only


def run_walkforward(data_dir: Path, markets: Sequence[str], config: WalkForwardConfig = WalkForwardConfig(), *,
                    train_dir: Path | None = None, progress: bool = True, runner=None, storage=None) -> dict:
    """The walk-forward on `runner` (core.research.cluster; default: in this process). Every fold is a
    task once its group's LSTM is; fold k's test period is traded as soon as folds 1..k are validated.
    `storage` (core.research.search_storage.SearchStorage) keeps an Optuna search resumable."""
    started = time.perf_counter()
    runner = runner or SerialRunner()
    train_dir = Path(train_dir or data_dir)
    if runner.task_threads == 1:  # a cluster task: one thread each (core.research.cluster.TASK_ENV)
        config = replace(config, train=replace(config.train, threads=1))
    job = Job(Path(data_dir), train_dir, tuple(markets), config, uuid.uuid4().hex)
    p = prepared(job)
    folds, candidates, base = p.folds, p.candidates, p.base
    parts = []
    for group in sorted({f.group for f in folds}):
        encoders = [runner.submit(encoder_task, job, group, li, key=f"wf-lstm-{group}-{li}")
                    for li in range(len(config.labels))]
        parts += [runner.submit(fold_task, job, f.index, encoders, key=f"wf-fold-{f.index}")
                  for f in folds if f.group == group]
        del encoders  # freed once the group's folds have them
    scores: dict[int, list[SliceScore]] = {i: [] for i in range(len(candidates))}
    done, tests = [], []
    bar = tqdm(total=len(folds), desc="walk-forward", unit="fold", disable=not progress)
    for fold, handle in zip(folds, parts):
        part = runner.result(handle)
        for i, s in enumerate(part.scores):
            scores[i].append(s)
        chosen = choose(candidates, scores, fold.index, config.min_exposure)
        done.append((part, chosen))
        tests.append(runner.submit(test_task, job, fold.index, handle, chosen, key=f"wf-test-{fold.index}"))
        bar.update()
    runs = []
    for fold, (part, chosen), handle in zip(folds, done, tests):
        strategy, trend, seconds = runner.result(handle)
        label = candidates[chosen].label
        runs.append(FoldRun(fold=fold, chosen=candidates[chosen].describe(base), auc=part.aucs[label],
                            auc_by_label=part.aucs, strategy=strategy, trend=trend, seconds=part.seconds + seconds,
                            model=model_record(part.models[label])))
        bar.set_postfix(fold=fold.label, trades=strategy.metrics["trades"])
    bar.close()
    defaults = candidates[choose(candidates, scores, len(folds) - 1, config.min_exposure)]
    searched = None
    if config.trials:
        def evaluate(batch: Sequence[Candidate]) -> list[list[SliceScore]]:
            handles = [runner.submit(trial_task, job, parts, c, key="wf-trial") for c in batch]
            return [runner.result(h) for h in handles]

        outcome = search(base, len(config.labels), evaluate, config.trials, config.min_exposure, config.train.seed,
                         progress, storage=storage, study=study_name(job))
        defaults = outcome.best
        searched = {"trials": outcome.trials, "score": outcome.score, "resumed": outcome.resumed,
                    "study": outcome.study}
    report = summarise(runs, config, markets, data_dir, train_dir)
    for row, (part, _) in zip(report["folds"], done):
        row["validation_traded_on"] = part.validated_on
    report["defaults"] = {"label": config.labels[defaults.label].to_dict(), "settings": defaults.describe(RiskSettings()),
                          "chosen_on": "every fold's validation slice" + (" (Optuna search)" if searched else " (grid)"),
                          "search": searched}
    report["ran_on"] = runner.name
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def study_name(job: Job) -> str:
    """The search's study: the same markets, candles and configuration resume the same study (asking
    for more trials than it holds adds them)."""
    files = sorted(str(d.source) for d in prepared(job).data[job.config.labels[0]])
    stamp = [(f, Path(f).stat().st_size) for f in files]
    setup = replace(job.config, trials=0, train=replace(job.config.train, threads=0))  # more trials: the same study
    digest = hashlib.sha256(repr((job.markets, stamp, str(job.data_dir), setup)).encode()).hexdigest()[:12]
    return f"walkforward-{digest}"


def model_record(model: HybridModel) -> dict:
    """What was traded, checkably: digests of the LSTM's weights and of the head, and the calibration."""
    weights = hashlib.sha256()
    for tensor in model.encoder.state_dict().values():
        weights.update(tensor.detach().cpu().numpy().tobytes())
    trees = model.head.model_to_string().split("\nparameters:\n")[0]  # not the thread count it ran with
    head = hashlib.sha256(trees.encode()).hexdigest()[:16]
    return {"lstm": weights.hexdigest()[:16], "head": head, "head_trees": model.head.num_trees(),
            "head_inputs": model.head.num_feature(),
            "calibration": model.calibration.to_dict()}
