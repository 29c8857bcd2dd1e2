"""The real `autotrader` console script in a subprocess."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.service.settings import SettingsError, load_settings
from tests.conftest import ROOT


def run_cli(*args, env=None, cwd=None, timeout=300, input=""):
    exe = shutil.which("autotrader") or str(Path(sys.executable).parent / "autotrader")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETS", "MODEL_DIR", "AUTOTRADER_"))}
    full_env.update(env or {})
    return subprocess.run([exe, *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT,
                          timeout=timeout, input=input)


def test_evaluate_writes_metrics_per_market_and_baselines(tiny_models, small_dataset, tmp_path):
    out = tmp_path / "report.json"
    result = run_cli("evaluate", "--model-dir", str(tiny_models), "--data", str(small_dataset),
                     "--markets", "KRW-BTC,KRW-ETH", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "| KRW-BTC | hybrid (global) |" in result.stdout or "| KRW-BTC | hybrid (KRW-BTC) |" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["markets"]) == {"KRW-BTC", "KRW-ETH"}
    for market, entry in report["markets"].items():
        for key in ("accuracy", "macro_f1", "roc_auc_buy", "roc_auc_sell", "log_loss", "brier", "confusion_matrix", "signals"):
            assert key in entry
        assert entry["rows"] > 500
        assert entry["period"][0] >= report["meta"]["test_start"]
        assert set(report["baselines"][market]) == {"class_prior", "lightgbm_last_step"}
        assert {"count", "hit_rate", "mean_net_return"} <= set(entry["signals"]["buy"])


def test_the_shipped_model_learnt_every_bundled_candle_and_says_where_its_evidence_is():
    result = run_cli("evaluate", "--markets", "KRW-BTC")
    assert result.returncode == 2
    assert "no market had enough out-of-sample rows" in result.stderr and "autotrader walkforward" in result.stderr


def test_train_then_evaluate_round_trip(small_dataset, tmp_path):
    out = tmp_path / "m"
    result = run_cli("train", "--data", str(small_dataset), "--markets", "KRW-BTC", "--out", str(out), "--epochs", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Validation split" in result.stdout and "hybrid_global" in result.stdout
    assert (out / "global" / "model_metadata.json").exists()
    result = run_cli("evaluate", "--model-dir", str(out), "--data", str(small_dataset), "--markets", "KRW-BTC")
    assert result.returncode == 0, result.stderr
    assert "lightgbm last step" in result.stdout


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["evaluate", "--markets", "BTC"], {}, "invalid market 'BTC'"),
        (["evaluate", "--data", "/nonexistent"], {}, "--data /nonexistent is not a directory"),
        (["evaluate"], {"AUTOTRADER_MODE": "yolo"}, "AUTOTRADER_MODE: expected 'paper' or 'live'"),
        (["evaluate", "--model-dir", "docs"], {}, "model directory docs/global does not exist"),
        (["download", "--since", "last week", "--out", "/tmp/x"], {}, "--since: expected a date"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, env, message):
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_settings_are_validated_with_the_variable_named(tmp_path):
    assert load_settings({}, env_file=None).mode == "paper"
    with pytest.raises(SettingsError, match="PAPER_START_KRW"):
        load_settings({"PAPER_START_KRW": "lots"}, env_file=None)
    with pytest.raises(SettingsError, match="TELEGRAM_ADMIN_IDS: 'bob'"):
        load_settings({"TELEGRAM_ADMIN_IDS": "1,bob"}, env_file=None)
    with pytest.raises(SettingsError, match="needs UPBIT_ACCESS_KEY"):
        load_settings({"AUTOTRADER_MODE": "live"}, env_file=None)
    env_file = tmp_path / ".env"
    env_file.write_text("MARKETS=krw-btc, KRW-ETH\nTELEGRAM_BOT_TOKEN=123:SECRET\n")
    settings = load_settings({}, env_file=env_file)
    assert settings.markets == ("KRW-BTC", "KRW-ETH")
    assert "SECRET" not in repr(settings)


def test_live_mode_needs_keys_and_limits_and_never_shows_the_keys():
    keys = {"AUTOTRADER_MODE": "live", "UPBIT_ACCESS_KEY": "ACCESS-abc", "UPBIT_SECRET_KEY": "SECRET-xyz"}
    with pytest.raises(SettingsError, match="needs MAX_ORDER_KRW and MAX_DAILY_KRW"):
        load_settings(keys, env_file=None)
    with pytest.raises(SettingsError, match="MAX_ORDER_KRW: must be 0"):
        load_settings({**keys, "MAX_ORDER_KRW": "100", "MAX_DAILY_KRW": "50000"}, env_file=None)
    settings = load_settings({**keys, "MAX_ORDER_KRW": "100_000", "MAX_DAILY_KRW": "500000"}, env_file=None)
    assert settings.is_live and settings.max_order_krw == 100_000
    assert "ACCESS-abc" not in repr(settings) and "SECRET-xyz" not in repr(settings)
    refused = run_cli("run", env={**keys})
    assert refused.returncode == 2 and "MAX_ORDER_KRW" in refused.stderr
    assert "SECRET-xyz" not in refused.stderr + refused.stdout
    replay = run_cli("run", "--replay", env={**keys, "MAX_ORDER_KRW": "100000", "MAX_DAILY_KRW": "500000"})
    assert replay.returncode == 2 and "--replay is paper trading" in replay.stderr
