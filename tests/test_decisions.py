"""The expected-return decision layer: calibration (fitted on validation rows, monotone), the expected
return's arithmetic, entries over costs and margin, exits when it turns negative or the horizon is
held, renewals, Kelly sizing, and the settings that switch the rule."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from core.trading.engine import TradingEngine, entry_bar, expected_return_size
from core.trading.rules import UPBIT_KRW
from core.trading.types import Account, Position, RiskSettings
from models.calibration import Calibration, class_mean_returns, fit_calibration
from models.signal import MLSignal

NOW = datetime(2025, 10, 1, 12, tzinfo=timezone.utc)
ENGINE = TradingEngine()
ER = RiskSettings()  # the default rule is expected_return


def sig(er, probabilities=(0.2, 0.5, 0.3)):
    return MLSignal.from_probabilities("KRW-BTC", probabilities, expected_return=er)


def account(cash=1_000_000.0):
    return Account(cash, 1_000_000.0, {}, cash, cash)


def held(opened=NOW - timedelta(hours=3), renewed=None):
    return Position("KRW-BTC", 0.01, 100_000_000.0, opened, 100_000_000.0, renewed)


def test_the_default_rule_is_expected_return_and_costs_are_a_round_trip():
    assert ER.decision_rule == "expected_return"
    assert UPBIT_KRW.round_trip_cost == pytest.approx(2 * (0.0005 + 0.0005))
    assert entry_bar(ER, UPBIT_KRW) == pytest.approx(0.002 + ER.entry_margin)


def test_a_buy_needs_the_expected_return_to_beat_costs_and_margin():
    bar = entry_bar(ER, UPBIT_KRW)
    below = ENGINE.decide(sig(bar - 1e-6), None, account(), ER, 100_000_000, NOW)
    assert not below.approved and below.action == "HOLD" and below.reason.code == "expected_low"
    above = ENGINE.decide(sig(bar + 1e-4), None, account(), ER, 100_000_000, NOW)
    assert above.approved and above.action == "BUY" and above.investment_ratio == pytest.approx(ER.max_position_ratio)
    assert str(above.reason).startswith("expected return +0.96% > 0.20% cost + 0.75% margin")
    no_model = ENGINE.decide(sig(None), None, account(), ER, 100_000_000, NOW)
    assert not no_model.approved and "no expected-return calibration" in no_model.reason


def test_a_position_is_sold_when_the_expected_return_turns_negative_and_renewed_when_it_stays_high():
    sold = ENGINE.decide(sig(-0.0001), held(), account(), ER, 100_000_000, NOW)
    assert sold.approved and sold.action == "SELL" and sold.kind == "signal" and "< 0" in sold.reason
    kept = ENGINE.decide(sig(0.001), held(), account(), ER, 100_000_000, NOW)  # positive but under the bar
    assert not kept.approved and not kept.renew
    renewed = ENGINE.decide(sig(0.02), held(opened=NOW - timedelta(hours=30)), account(), ER, 100_000_000, NOW)
    assert not renewed.approved and renewed.renew and renewed.reason.code == "renewed"


def test_a_position_held_for_the_horizon_without_a_new_signal_is_sold():
    old = held(opened=NOW - timedelta(hours=12))
    d = ENGINE.decide(sig(0.001), old, account(), ER, 100_000_000, NOW)
    assert d.approved and d.kind == "time_exit" and d.reason == "held 12 h without a new entry signal"
    fresh = held(opened=NOW - timedelta(hours=30), renewed=NOW - timedelta(hours=2))
    assert not ENGINE.decide(sig(0.001), fresh, account(), ER, 100_000_000, NOW).approved
    off = RiskSettings(max_hold_hours=0)
    assert not ENGINE.decide(sig(0.001), old, account(), off, 100_000_000, NOW).approved


def test_the_renewal_restarts_the_holding_period_through_the_cycle():
    from core.trading.cycle import TradingCycle
    from core.trading.paper import PaperExchange
    from core.trading.portfolio import Portfolio
    from tests.fakes.feeds import BUY, HOLD, ScriptedFeed, hour

    feed = ScriptedFeed()
    for i in range(1, 30):
        feed.at(i, "KRW-BTC", BUY if i in (1, 10) else HOLD, 100_000_000)
    cycle = TradingCycle(feed, PaperExchange(1_000_000, 0), Portfolio(1_000_000, 1_000_000))
    kinds = {i: [(r.decision.kind, r.decision.approved) for r in cycle.run(hour(i)) if r.decision] for i in range(1, 30)}
    assert kinds[1] == [("signal", True)]  # bought
    assert kinds[13] == [("signal", False)]  # 12 h after the buy, but renewed at hour 10
    assert kinds[22] == [("time_exit", True)]  # 12 h after the renewal


def test_kelly_sizing_shrinks_with_volatility_and_is_capped():
    kelly = RiskSettings(sizing="kelly", kelly_fraction=0.25, max_position_ratio=0.3)
    s = sig(0.012)
    calm = expected_return_size(s, kelly, UPBIT_KRW, volatility=0.004)
    wild = expected_return_size(s, kelly, UPBIT_KRW, volatility=0.03)
    assert calm == pytest.approx(0.3)  # capped
    assert wild == pytest.approx(0.25 * (0.012 - 0.002) / (0.03 ** 2 * 12))
    assert expected_return_size(s, ER, UPBIT_KRW, volatility=0.03) == pytest.approx(ER.max_position_ratio)
    assert expected_return_size(s, kelly, UPBIT_KRW, volatility=None) == pytest.approx(0.3)


def test_the_rule_and_its_parameters_are_settings_users_change():
    s = RiskSettings().with_value("decision_rule", "threshold").with_value("entry_margin", "0.01")
    assert s.decision_rule == "threshold" and s.entry_margin == 0.01
    with pytest.raises(ValueError, match=r"decision_rule must be expected_return \| threshold"):
        RiskSettings().with_value("decision_rule", "vibes")
    with pytest.raises(ValueError, match=r"sizing must be fixed \| kelly"):
        RiskSettings().with_value("sizing", "all-in")
    threshold = ENGINE.decide(sig(None, (0.1, 0.2, 0.7)), None, account(), s, 100_000_000, NOW)
    assert threshold.approved and threshold.reason.code == "model_buy"  # the old rule needs no calibration


def test_the_expected_return_is_the_probability_weighted_class_return():
    cal = Calibration("platt", ((1.0, 0.0),) * 3, (-0.03, 0.0, 0.033))
    p = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    assert cal.expected_return(p) == pytest.approx([0.2 * -0.03 + 0.3 * 0.033, 0.6 * -0.03 + 0.1 * 0.033])
    assert class_mean_returns(np.array([-0.02, 0.001, 0.04, np.nan]), np.array([0, 1, 2, 2])) == \
        pytest.approx((-0.02, 0.001, 0.04))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_is_monotone_sums_to_one_and_learns_from_its_rows_only(method):
    rng = np.random.default_rng(3)
    raw = rng.dirichlet((2, 3, 2), size=3000)
    labels = np.array([rng.choice(3, p=p ** 2 / (p ** 2).sum()) for p in raw])  # truth sharper than the model
    cal = fit_calibration(raw, labels, (-0.03, 0.0, 0.03), method, {"rows": 3000})
    out = cal.apply(raw)
    assert out.sum(axis=1) == pytest.approx(np.ones(len(out)))
    xs = np.linspace(0.01, 0.99, 200)
    for c in range(3):
        assert np.all(np.diff(cal.class_map(c, xs)) >= -1e-12)  # ranking within a class is kept
    again = fit_calibration(raw, labels, (-0.03, 0.0, 0.03), method)
    assert again.params == cal.params  # deterministic
    other = fit_calibration(raw[:1500], labels[:1500], (-0.03, 0.0, 0.03), method)
    assert other.params != cal.params  # it is fitted on the rows it is given, and nothing else
    assert Calibration.from_dict(cal.to_dict()).apply(raw) == pytest.approx(out)


def test_signals_settings_and_model_say_the_rule_the_expected_return_and_the_walkforward(tmp_path):
    import json

    from bot.views import render
    from core.service.replies import SettingsView, SignalRow, SignalsView
    from core.service.reports import ModelView, walkforward_line

    row = SignalRow("KRW-BTC", NOW, "BUY", 0.5, 0.2, 0.3, 0.2, 0.06, "BUY", "expected", expected_return=0.0123)
    text = render(SignalsView((row,), (), "expected_return", entry_bar(ER, UPBIT_KRW)))
    assert "expected return +1.23%" in text
    assert text.startswith(f"Rule: expected_return: buy above an expected return of {entry_bar(ER, UPBIT_KRW):+.2%}")

    risk = ER.with_value("entry_margin", "0.01")
    settings = render(SettingsView(risk, (("entry_margin", 0.005), ("stop_loss", 0.03)), entry_bar(risk, UPBIT_KRW),
                                   UPBIT_KRW.round_trip_cost))
    assert "entry_margin = 1.0% (the model's walk-forward chose 0.5%)" in settings
    assert "stop_loss = 3.0% (the model's walk-forward default)" in settings
    assert "a round trip's 0.20% plus entry_margin" in settings.splitlines()[0]

    summary = {"folds": [{"test": ["2019-01-01T00:00:00+00:00", "2019-04-01T00:00:00+00:00"]},
                         {"test": ["2019-04-01T00:00:00+00:00", "2019-07-01T00:00:00+00:00"]}],
               "overall": {"total_return": 0.12, "sharpe": 0.8, "max_drawdown": -0.1, "trades": 40, "profit_factor": 1.2},
               "baselines": {"buy_and_hold": {"total_return": 0.5, "sharpe": 1.1, "max_drawdown": -0.4, "trades": 0},
                             "trend": {"total_return": 0.2, "sharpe": 0.6, "max_drawdown": -0.3, "trades": 9,
                                       "profit_factor": 1.1}}}
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps({"walkforward": summary}))
    text = render(ModelView((), walkforward_line(path)))
    assert text == ("Walk-forward, out of sample 2019-01-01 .. 2019-07-01 (2 folds): strategy +12.0%, Sharpe 0.80, "
                    "max drawdown -10.0%, 40 trades, profit factor 1.20; buy-and-hold +50.0%, Sharpe 1.10, max drawdown "
                    "-40.0%; trend rule +20.0%, Sharpe 0.60, max drawdown -30.0%, 9 trades, profit factor 1.10.")
    path.write_text("{}")
    assert walkforward_line(path) is None


def test_backtest_with_the_shipped_defaults_trades(tmp_path):
    """The shipped model comes with the walk-forward's defaults, and the backtest applies them: it trades
    (the old fixed thresholds made no trade here). In-sample for the shipped model: a behaviour, not evidence."""
    import json

    from core.service.defaults import chosen_defaults
    from models.shipped import SHIPPED_MODEL_DIR
    from tests.test_cli import run_cli

    chosen = chosen_defaults(SHIPPED_MODEL_DIR)
    assert chosen and "entry_margin" in chosen
    out = tmp_path / "bt.json"
    result = run_cli("backtest", "--data", "data/binance-1h", "--markets", "USDT-BTC,USDT-ETH,USDT-XRP,USDT-SOL",
                     "--start", "2025-07-01", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert f"entry_margin={chosen['entry_margin']:.1%}" in result.stdout
    report = json.loads(out.read_text())
    assert report["strategy"]["trades"] >= 5
