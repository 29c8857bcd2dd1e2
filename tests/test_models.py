import json

import numpy as np
import pandas as pd
import pytest

from core.data.candles import load_candle_csv
from core.data.features import (
    SEQUENCE_LENGTH,
    build_feature_history,
    build_features_from_market_data,
)
from models.dataset import SplitPlan
from models.hybrid import HybridModel, ModelLoadError
from models.labels import LabelSpec
from models.manager import MultiCoinModelManager
from models.predictor import HybridPredictor


@pytest.fixture(scope="module")
def windows(small_dataset):
    candles = load_candle_csv(small_dataset / "KRW-BTC_1h.csv")
    history = build_feature_history(candles, 3600)
    return history.windows(history.window_ends[-40:])


def test_save_load_round_trip_gives_identical_probabilities(tiny_models, windows, tmp_path):
    model = HybridModel.load(tiny_models / "global")
    before = model.predict_proba(windows)
    model.save(tmp_path / "copy")
    again = HybridModel.load(tmp_path / "copy").predict_proba(windows)
    np.testing.assert_array_equal(before, again)
    assert before.shape == (40, 3)
    np.testing.assert_allclose(before.sum(axis=1), 1.0)


def test_metadata_records_what_was_trained(tiny_models):
    meta = json.loads((tiny_models / "global" / "model_metadata.json").read_text())
    assert meta["sequence_length"] == 24 and len(meta["feature_names"]) == 46
    assert meta["label"]["horizon"] == 12 and meta["label"]["fee_rate"] == 0.0005
    assert set(meta["sources"]) == {"KRW-BTC", "KRW-ETH"}
    assert {"torch", "lightgbm", "numpy"} <= set(meta["library_versions"])
    assert meta["splits"]["purge_candles"] == 12 + 24


def test_wrong_shape_is_a_clear_error(tiny_models):
    manager = MultiCoinModelManager(tiny_models, ["KRW-BTC"])
    with pytest.raises(ValueError, match=r"Invalid sequence data: expected \(24, 46\), got \(24, 45\)"):
        manager.predict("KRW-BTC", np.zeros((24, 45)))
    with pytest.raises(ValueError, match=r"got \(10, 46\)"):
        HybridModel.load(tiny_models / "global").predict_proba(np.zeros((10, 46)))
    with pytest.raises(ValueError, match="NaN"):
        manager.predict("KRW-BTC", np.full((24, 46), np.nan))


def test_missing_or_corrupt_model_gives_hold_not_a_crash(model_copy, windows):
    (model_copy / "global" / "lightgbm.txt").write_text("this is not a model")
    manager = MultiCoinModelManager(model_copy, ["KRW-DOGE"])
    signal = manager.predict("KRW-DOGE", windows[0])
    assert signal.action == "HOLD" and not signal.ok and "lightgbm.txt is corrupt" in signal.error
    (model_copy / "global" / "lstm.npz").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="lstm.npz is corrupt"):
        HybridModel.load(model_copy / "global")
    (model_copy / "global" / "lstm.npz").unlink()  # a model from before lstm.npz: its lstm.pt, with torch
    (model_copy / "global" / "lstm.pt").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="lstm.pt is corrupt"):
        HybridModel.load(model_copy / "global")
    (model_copy / "global" / "lstm.pt").unlink()
    with pytest.raises(ModelLoadError, match="lacks lstm.npz"):
        HybridModel.load(model_copy / "global")
    missing = MultiCoinModelManager(model_copy / "nowhere", ["KRW-BTC"])
    assert missing.load_all_models().loaded == ()
    assert "does not exist" in missing.predict("KRW-BTC", windows[0]).error


def test_models_for_other_features_are_refused(model_copy):
    path = model_copy / "global" / "model_metadata.json"
    meta = json.loads(path.read_text())
    meta["feature_names"] = meta["feature_names"][::-1]
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="other features"):
        HybridModel.load(model_copy / "global")


def test_manager_falls_back_to_global_and_loads_lazily(tiny_models, windows):
    manager = MultiCoinModelManager(tiny_models, ["KRW-BTC", "KRW-ETH", "KRW-DOGE"])
    assert manager.loaded_paths == ()
    assert manager.uses_fallback("KRW-DOGE")
    signal = manager.predict("KRW-DOGE", windows[0])
    assert signal.ok and signal.model_id.startswith("hybrid-global")
    assert manager.loaded_paths == (tiny_models / "global",)
    report = manager.load_all_models()
    assert str(report).startswith("Loaded 3/3 models")


def test_batch_prediction_equals_one_by_one(tiny_models, windows):
    from core.data.features import FeatureWindow

    markets = ["KRW-BTC", "KRW-ETH", "KRW-DOGE", "KRW-XRP"]
    manager = MultiCoinModelManager(tiny_models, markets)
    batch_in = [FeatureWindow(m, pd.Timestamp("2025-01-01", tz="UTC"), 1.0, windows[i * 5]) for i, m in enumerate(markets)]
    batch = manager.predict_batch(batch_in)
    assert list(batch) == markets
    for window in batch_in:
        single = manager.predict(window.market, window.sequence)
        assert batch[window.market].buy_probability == pytest.approx(single.buy_probability, abs=1e-6)
        assert batch[window.market].sell_probability == pytest.approx(single.sell_probability, abs=1e-6)
        assert batch[window.market].action == single.action


def test_user_guide_api_on_the_shipped_models(btc):
    features = build_features_from_market_data(btc.iloc[-200:], "KRW-BTC")
    signal = HybridPredictor().infer(features)
    assert signal.ok and signal.market == "KRW-BTC" and signal.action in ("BUY", "SELL", "HOLD")
    total = signal.buy_probability + signal.sell_probability + signal.hold_probability
    assert total == pytest.approx(1.0)
    manager = MultiCoinModelManager()
    assert str(manager.load_all_models()) == "Loaded 4/4 models"
    assert manager.load_model_for_market("KRW-BTC")
    again = manager.predict("KRW-BTC", features["sequence"])
    assert again.buy_probability == pytest.approx(signal.buy_probability, abs=1e-6)


def test_training_is_deterministic(small_dataset, tiny_models, windows, tmp_path):
    from models.lstm import EncoderConfig
    from models.training import TrainConfig, train_models

    config = TrainConfig(encoder=EncoderConfig(hidden_size=16), epochs=1, samples_per_epoch=2000, head_rounds=30)
    train_models(small_dataset, ["KRW-BTC", "KRW-ETH"], tmp_path, config=config, progress=False)
    first = HybridModel.load(tiny_models / "global").predict_proba(windows)
    second = HybridModel.load(tmp_path / "global").predict_proba(windows)
    np.testing.assert_array_equal(first, second)


def test_split_is_chronological_with_a_purge_gap(btc):
    history = build_feature_history(btc, 3600)
    spec = LabelSpec(horizon=12)
    plan = SplitPlan.from_span(btc.index[0], btc.index[-1], spec, 3600)
    split = plan.assign(history.index, history.window_ends)
    times = history.index[history.window_ends]
    for a in range(3):
        before, after = times[split == a], times[split == a + 1]
        assert len(before) and len(after)
        assert before.max() < after.min()
        hours = (after.min() - before.max()).total_seconds() / 3600
        assert hours >= spec.horizon + SEQUENCE_LENGTH


def test_the_numpy_encoder_serves_what_torch_computes(tiny_models, windows):
    """Serving runs the LSTM in NumPy; training in torch. Both forward passes agree within 1e-6, on
    real windows of the bundled markets and on random inputs, for the shipped model and a fresh one."""
    import torch

    from models.encoder import EncoderConfig, NumpyEncoder
    from models.lstm import SequenceEncoder
    from models.shipped import SHIPPED_MODEL_DIR

    rng = np.random.default_rng(3)
    for directory, config in ((SHIPPED_MODEL_DIR / "global", None), (tiny_models / "global", None),
                              (None, EncoderConfig(hidden_size=12, num_layers=2, embedding_size=5))):
        if directory is not None:
            meta = json.loads((directory / "model_metadata.json").read_text())
            config = EncoderConfig(**meta["encoder"])
            state = torch.load(directory / "lstm.pt", map_location="cpu", weights_only=True)
            served = HybridModel.load(directory)
            inputs = [served.scale(np.asarray(windows, np.float32))]
        else:
            torch.manual_seed(1)
            state = SequenceEncoder(config).state_dict()
            inputs = []
        torch_encoder = SequenceEncoder(config)
        torch_encoder.load_state_dict(state)
        torch_encoder.eval()
        numpy_encoder = NumpyEncoder.from_state_dict(config, state)
        inputs.append(rng.normal(0, 2, (300, 24, config.n_features)).astype(np.float32))
        for x in inputs:
            with torch.inference_mode():
                expected = torch_encoder.embed(torch.from_numpy(x)).numpy()
            assert np.abs(numpy_encoder.embed(x) - expected).max() < 1e-6
        if directory is not None:
            assert isinstance(served.encoder, NumpyEncoder)


def test_serving_imports_no_torch():
    """A backtest and the agent's model loading import neither torch nor scikit-learn nor matplotlib
    (the bot holds less memory and starts faster); only training and pictures import them."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from core.trading.backtest import run_backtest\n"
            "from models.manager import MultiCoinModelManager\n"
            "from tests.conftest import DATA\n"
            "from core.service import commands\n"
            "import bot.views, bot.cli\n"
            "r = run_backtest(DATA / 'upbit-1h', ['KRW-BTC'], MultiCoinModelManager(markets=['KRW-BTC']))\n"
            "assert r.steps, 'no step'\n"
            "print('sklearn' in sys.modules, 'matplotlib' in sys.modules)\n"
            "import sklearn.linear_model\n"  # hidden from lightgbm only: training still finds it
            "print('torch' in sys.modules)\n")
    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-2:] == ["False False", "False"]


def test_training_without_its_extra_is_one_line(monkeypatch):
    import importlib.util

    import pytest as _pytest

    from bot.cli_research import needs_training_extra
    from core.service.registry import UsageError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with _pytest.raises(UsageError, match=r"train needs the training extra .*pip install -e '\.\[train\]'"):
        needs_training_extra("train")
