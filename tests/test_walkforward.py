"""The walk-forward: folds purged at every boundary, no look-ahead (changing candles after a fold's
validation changes nothing in its model, calibration or choice), the same result for the same seed,
and the CLI end to end on a small data set."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.data.candles import load_candle_csv, write_candle_csv
from core.research.folds import make_folds
from core.research.search import search
from core.research.selection import SliceScore, grid, score
from core.research.walkforward import WalkForwardConfig, run_walkforward
from core.trading.types import RiskSettings
from models.dataset import SplitPlan
from models.fit import TrainConfig
from models.lstm import EncoderConfig
from tests.conftest import DATA
from tests.test_cli import run_cli

TINY = TrainConfig(encoder=EncoderConfig(hidden_size=8, embedding_size=8), epochs=1, samples_per_epoch=1500,
                   head_rounds=25, patience=1)
CONFIG = WalkForwardConfig(start=pd.Timestamp("2025-05-01", tz="UTC"), test_months=2, validation_months=2,
                           head_months=2, train=TINY, lstm_every=2)
MARKETS = ["USDT-BTC", "USDT-ETH"]


@pytest.fixture(scope="module")
def wf_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("wf")
    for coin in ("BTC", "ETH"):
        candles = load_candle_csv(DATA / "binance-1h" / f"USDT-{coin}_1h.csv.gz").loc["2024-09-01":]
        write_candle_csv(candles, out / f"USDT-{coin}_1h.csv")
    return out


@pytest.fixture(scope="module")
def report(wf_data):
    return run_walkforward(wf_data, MARKETS, CONFIG, progress=False)


def test_every_boundary_is_purged_by_horizon_plus_a_window():
    index = pd.date_range("2020-01-01", "2023-01-01", freq="h", tz="UTC")
    folds = make_folds(index[0], index[-1], start=pd.Timestamp("2021-01-01", tz="UTC"), horizon=12, test_months=3,
                       validation_months=6, head_months=12)
    assert [f.test_start for f in folds][:3] == list(pd.to_datetime(["2021-01-01", "2021-04-01", "2021-07-01"], utc=True))
    assert all(a.test_end == b.test_start for a, b in zip(folds, folds[1:]))  # test periods tile the span
    ends = np.arange(30, len(index) - 20)
    for fold in folds:
        split = fold.plan.assign(index, ends)
        for a, b in ((0, 1), (1, 2), (2, 3)):
            if not (split == b).any():
                continue  # the last fold's test period runs past these window ends
            last_label = index[ends[split == a]].max() + pd.Timedelta(hours=12)  # where its label ends
            first_window = index[ends[split == b]].min() - pd.Timedelta(hours=23)  # where its window starts
            assert first_window > last_label, (fold.index, a, b)
            gap = index[ends[split == b]].min() - index[ends[split == a]].max()
            assert gap >= pd.Timedelta(hours=12 + 24), (fold.index, a, b)  # horizon + window, at least
        test = index[ends[split == 3]]
        if len(test):
            assert test.min() - pd.Timedelta(hours=23) >= fold.test_start and test.max() < fold.test_end
    grouped = {f.group: f.lstm_plan for f in folds}
    assert all(f.lstm_plan == grouped[f.group] and f.plan.head_start == f.lstm_plan.head_start for f in folds)


def test_a_rolling_window_forgets_old_candles():
    index = pd.date_range("2018-01-01", "2023-01-01", freq="h", tz="UTC")
    fold = make_folds(index[0], index[-1], start=pd.Timestamp("2022-01-01", tz="UTC"), horizon=12, window="rolling",
                      train_months=12)[0]
    split = fold.plan.assign(index, np.arange(30, len(index)))
    assert index[np.arange(30, len(index))[split == 0]].min() >= fold.plan.train_start


def test_the_walkforward_reports_every_fold_beside_the_baselines(report):
    assert len(report["folds"]) == 3
    for fold in report["folds"]:
        assert {"strategy", "buy_and_hold", "trend", "cash", "chosen", "auc", "model"} <= set(fold)
        assert fold["validation"][1] == fold["test"][0]  # chosen on the slice right before, never on the test
    for key in ("total_return", "sharpe", "max_drawdown", "trades", "profit_factor", "expectancy", "exposure",
                "turnover"):
        assert key in report["overall"] and key in report["baselines"]["trend"]
    assert set(report["baselines"]) == {"buy_and_hold", "trend", "cash"}
    assert report["overall"]["trades"] == sum(f["strategy"]["trades"] for f in report["folds"])
    assert set(report["targets"]) >= {"trades >= 300", "profit factor >= 1.15", "exposure between 10% and 70%"}
    assert report["defaults"]["chosen_on"].startswith("every fold's validation slice")
    assert len(report["curves"]["times"]) == len(report["curves"]["strategy"]) == len(report["curves"]["trend"])


def test_candles_after_a_folds_validation_change_nothing_it_learnt_or_chose(wf_data, report, tmp_path):
    cut = pd.Timestamp(report["folds"][1]["test"][0])  # fold 1's test period and everything after it
    for market in MARKETS:
        candles = load_candle_csv(wf_data / f"{market}_1h.csv")
        later = candles.index >= cut
        noise = np.random.default_rng(5).uniform(0.9, 1.1, later.sum())
        for column in ("open", "high", "low", "close"):
            candles.loc[later, column] = candles.loc[later, column] * noise
        candles["high"] = candles[["open", "high", "close"]].max(axis=1)
        candles["low"] = candles[["open", "low", "close"]].min(axis=1)
        write_candle_csv(candles, tmp_path / f"{market}_1h.csv")
    changed = run_walkforward(tmp_path, MARKETS, CONFIG, progress=False)
    for before, after in zip(report["folds"][:2], changed["folds"][:2]):  # fold 1 learnt and chose before `cut`
        assert after["model"] == before["model"] and after["chosen"] == before["chosen"]
    assert changed["folds"][2]["model"]["head"] != report["folds"][2]["model"]["head"]  # fold 2 learnt from it


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def test_later_candles_of_another_source_are_traded_and_validation_falls_back_to_the_learnt_ones(wf_data, tmp_path):
    """As with Upbit's KRW candles (since 2025) traded by a model learnt from Binance's history: a fold
    whose validation slice has no traded candles chooses on the learnt candles of that slice."""
    traded = tmp_path / "traded"
    traded.mkdir()
    for market in MARKETS:
        candles = load_candle_csv(wf_data / f"{market}_1h.csv").loc["2025-07-01":]
        write_candle_csv(candles, traded / f"{market}_1h.csv")
    report = run_walkforward(traded, MARKETS, CONFIG, train_dir=wf_data, progress=False)
    assert [f["test"][0][:10] for f in report["folds"]] == ["2025-07-01", "2025-09-01"]
    assert report["folds"][0]["validation_traded_on"] == str(wf_data)  # 2025-05 .. 07: only the learnt candles
    assert report["folds"][1]["validation_traded_on"] == str(traded)
    assert report["overall"]["trades"] == sum(f["strategy"]["trades"] for f in report["folds"])


def test_the_same_seed_gives_the_same_result(wf_data, report):
    again = run_walkforward(wf_data, MARKETS, CONFIG, progress=False)
    assert json.dumps(without_timings(again), sort_keys=True, default=str) == \
        json.dumps(without_timings(report), sort_keys=True, default=str)


def test_the_cli_writes_json_and_a_picture(wf_data, tmp_path):
    out, plot = tmp_path / "wf.json", tmp_path / "wf.png"
    result = run_cli("walkforward", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--start", "2025-07-01",
                     "--test-months", "2", "--validation-months", "2", "--head-months", "2", "--epochs", "1",
                     "--trials", "2", "--set", "max_consecutive_losses=5",
                     "--json", str(out), "--plot", str(plot), "--quiet", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| overall | return | Sharpe |" in result.stdout and "Targets:" in result.stdout
    written = json.loads(out.read_text())
    assert written["folds"] and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written["defaults"]["search"]["trials"] == 2 and "Optuna" in written["defaults"]["chosen_on"]
    assert written["defaults"]["settings"]["max_consecutive_losses"] == 5  # --set is what every candidate starts from
    assert "not measured: mean AUC above the current model's" in result.stdout  # never claimed as met
    models = tmp_path / "models"
    mismatch = run_cli("train", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--out", str(models),
                       "--walkforward", str(out), "--horizon", "6", "--quiet")
    assert mismatch.returncode == 2 and "chose its defaults for the label 12:0.005" in mismatch.stderr
    trained = run_cli("train", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--out", str(models),
                      "--walkforward", str(out), "--validation-months", "2", "--head-months", "2", "--epochs", "1",
                      "--quiet", timeout=600)
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((models / "global" / "model_metadata.json").read_text())
    assert meta["decision_defaults"] == {k: v for k, v in written["defaults"]["settings"].items() if k != "label"}
    assert meta["walkforward"]["overall"]["trades"] == written["overall"]["trades"]
    not_a_report = run_cli("train", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--out", str(models),
                           "--walkforward", str(plot))
    assert not_a_report.returncode == 2 and "--walkforward:" in not_a_report.stderr
    bad = run_cli("walkforward", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--labels", "twelve")
    assert bad.returncode == 2 and "--labels: expected HORIZON:THRESHOLD" in bad.stderr
    early = run_cli("walkforward", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--start", "2024-10-01")
    assert early.returncode == 2 and "too late for a first test period" in early.stderr


def test_the_search_keeps_the_best_trial_and_is_the_same_for_the_same_seed():
    base = RiskSettings()
    seen = []

    def slices(candidate):  # a known optimum: the score falls with the distance from a 1% margin
        sharpe = 2.0 - 100 * abs(candidate.settings.entry_margin - 0.01)
        return [SliceScore(sharpe, 20, 0.5, 0.01)] * 3

    def evaluate(batch):
        seen.extend(batch)
        return [slices(c) for c in batch]

    outcome = search(base, 1, evaluate, 12, 0.1, seed=3)
    assert outcome.trials == 12 and len(seen) == 12 and outcome.resumed == 0
    assert outcome.score == max(score(slices(c), 0.1) for c in seen)
    assert outcome.best.settings.entry_margin == max(seen, key=lambda c: score(slices(c), 0.1)).settings.entry_margin
    assert 0.0 <= outcome.best.settings.entry_margin <= 0.02 and outcome.best.settings.sizing in ("fixed", "kelly")
    assert search(base, 1, evaluate, 12, 0.1, seed=3).best == outcome.best


def test_the_grid_is_every_combination_of_its_axes_from_the_base():
    base = RiskSettings(max_consecutive_losses=5)
    candidates = grid(base, labels=2)
    assert len(candidates) == 2 * 5 * 3 * 2 and len({c for c in candidates}) == len(candidates)
    assert all(c.settings.max_consecutive_losses == 5 for c in candidates)
    assert {(c.settings.stop_loss, c.settings.trailing_stop) for c in candidates} == {(0.0, 0.0), (0.05, 0.0), (0.0, 0.03)}


def test_splitplan_keeps_its_old_dictionary():
    plan = SplitPlan(pd.Timestamp("2022-01-01", tz="UTC"), pd.Timestamp("2023-01-01", tz="UTC"),
                     pd.Timestamp("2024-01-01", tz="UTC"), 12, 3600)
    assert set(plan.to_dict()) == {"head_start", "validation_start", "test_start", "purge_candles"}


def test_the_context_block_is_causal_and_judged_by_the_walkforward(wf_data):
    from core.research.context import column_names, context_frames

    candles = {m: load_candle_csv(wf_data / f"{m}_1h.csv") for m in MARKETS}
    frames = context_frames(candles, ("cross", "long"))
    cut = candles["USDT-BTC"].index[3000]
    changed = {m: c.copy() for m, c in candles.items()}
    for c in changed.values():  # every candle after `cut` moves: nothing at or before it may
        c.loc[c.index > cut, ["open", "high", "low", "close"]] *= 1.7
    again = context_frames(changed, ("cross", "long"))
    for m in MARKETS:
        assert list(frames[m].columns) == list(column_names(("cross", "long")))
        pd.testing.assert_frame_equal(frames[m].loc[:cut], again[m].loc[:cut])
        assert not frames[m].loc[cut:].iloc[200:].isna().any().any()
    assert frames["USDT-ETH"]["btc_ret_24"].equals(frames["USDT-BTC"]["btc_ret_24"].reindex(frames["USDT-ETH"].index))

    from dataclasses import replace as _replace

    report = run_walkforward(wf_data, MARKETS, _replace(CONFIG, context=("cross",)), progress=False)
    assert report["config"]["context"] == ["btc_ret_24", "btc_vol_24", "breadth_24"]
    assert len(report["folds"]) == 3 and report["overall"]["auc"]["buy"] is not None
    assert report["folds"][0]["model"]["head_inputs"] == 8 + 46 + 3  # embedding, the 46, the block
    bad = run_cli("walkforward", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--context", "moon")
    assert bad.returncode == 2 and "--context: expected a comma list of cross, long" in bad.stderr
