"""The CLI's research commands: `train`, `evaluate`, `backtest` and `walkforward`, on candle files."""
from __future__ import annotations

import json
from pathlib import Path

from bot.cli_args import (
    existing_dir,
    existing_file,
    instant,
    markets_arg,
    model_dir_arg,
    risk_overrides,
    training_out,
)
from bot.cli_cluster import add_cluster_args, cluster_runner, search_storage
from core.data.bundled import BUNDLED_DATA_DIR
from core.service.registry import UsageError
from core.service.settings import Settings

TRAINING_DATA = BUNDLED_DATA_DIR / "binance-1h"


def _label_specs(text: str):
    from models.labels import LabelSpec

    specs = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        horizon, sep, threshold = item.partition(":")
        try:
            specs.append(LabelSpec(horizon=int(horizon), threshold=float(threshold) if sep else 0.005))
        except ValueError as exc:
            raise UsageError(f"--labels: expected HORIZON:THRESHOLD such as 12:0.005, got {item!r} ({exc})") from None
    if not specs:
        raise UsageError("--labels: give at least one HORIZON:THRESHOLD, e.g. 12:0.005")
    return tuple(specs)


def _write_json(path: str | None, data: dict, what: str = "JSON") -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2, default=str))
        print(f"{what} written to {path}")


def _walkforward_extra(path: str | None) -> dict | None:
    from core.research.metadata import walkforward_metadata

    if not path:
        return None
    try:
        return walkforward_metadata(existing_file(Path(path), "--walkforward"))
    except ValueError as exc:  # not JSON, or not a walkforward report
        raise UsageError(f"--walkforward: {exc}") from None


def _train_label(args, extra: dict | None):
    """The label to train on: --horizon/--threshold, else the walk-forward's chosen label, else 12:0.5%.
    Defaults chosen for one label are not handed to a model trained on another."""
    from models.labels import LabelSpec

    chosen = (extra or {}).get("decision_label") or {}
    horizon = args.horizon if args.horizon is not None else int(chosen.get("horizon", 12))
    threshold = args.threshold if args.threshold is not None else float(chosen.get("threshold", 0.005))
    if chosen and (horizon, threshold) != (int(chosen["horizon"]), float(chosen["threshold"])):
        raise UsageError(f"--walkforward chose its defaults for the label {chosen['horizon']}:{chosen['threshold']}; "
                         f"train on that label (drop --horizon/--threshold) or run the walk-forward with "
                         f"--labels {horizon}:{threshold}")
    return LabelSpec(horizon=horizon, threshold=threshold)


TRAIN_EXTRA = ("{what} needs the training extra (torch, optuna and dask): .venv/bin/pip install -e '.[train]' "
               "(on a machine without this project's CPU wheel, add --extra-index-url "
               "https://download.pytorch.org/whl/cpu, or pip pulls gigabytes of CUDA)")


def needs_training_extra(what: str) -> None:
    """A one-line error, not an ImportError, when torch is not installed (the run command leaves it out)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("optuna") is None:
        raise UsageError(TRAIN_EXTRA.format(what=what))


def cmd_train(args, settings: Settings) -> int:
    needs_training_extra("train")
    from models.training import TrainConfig, train_models

    data = existing_dir(Path(args.data), "--data")
    every = (args.markets or "").strip().lower() == "all"
    markets = _every_market(data, settings) if every else markets_arg(args.markets, settings)
    out = training_out(args.out, args.replace_shipped)
    config = TrainConfig(seed=args.seed, epochs=args.epochs, calibration=args.calibration,
                         per_market_heads=args.per_market_heads or every)
    extra = _walkforward_extra(args.walkforward)
    spec = _train_label(args, extra)
    plan = None
    if args.validation_months:
        from core.research.metadata import final_plan

        plan = final_plan(data, markets, spec, settings.interval_seconds, args.validation_months, args.head_months)
    shown = ", ".join(markets) if len(markets) <= 12 else f"{len(markets)} markets ({', '.join(markets[:4])}, ...)"
    with cluster_runner(args) as runner:
        print(f"Training {shown} from {data} into {out} (horizon {spec.horizon}, threshold {spec.threshold:.3%}) "
              f"on {runner.name}", flush=True)
        report = train_models(data, markets, out, interval=settings.candle_interval,
                              interval_seconds=settings.interval_seconds, spec=spec, config=config,
                              progress=not args.quiet, plan=plan, extra_metadata=extra, runner=runner)
    left = ("no test split is left: judge this recipe with `walkforward`" if plan is not None
            else "the test split is left for `evaluate`")
    print(f"\nValidation split (early stopping, calibration, head selection; {left}):")
    print(report.table())
    if config.per_market_heads:
        print(f"\nPer-market heads kept (better validation log-loss than the global head): "
              f"{', '.join(report.per_market_heads) or 'none'}")
    print(f"Trained in {report.seconds:.1f} s; models written to {out}")
    print(f"To use them: MODEL_DIR={out} autotrader run (or --model-dir {out} for run, backtest and evaluate)")
    return 0


def _every_market(data: Path, settings: Settings) -> tuple[str, ...]:
    """`--markets all`: every market with a candle file of the interval in --data (`download --all-krw`)."""
    from core.data.candles import list_markets
    from core.data.markets import parse_markets

    found = list_markets(data, settings.candle_interval)
    if not found:
        raise UsageError(f"--markets all: no <MARKET>_{settings.candle_interval}.csv files in {data}; "
                         f"fetch them with `autotrader download --all-krw --out {data}`")
    return parse_markets(",".join(found), "--markets")


def cmd_evaluate(args, settings: Settings) -> int:
    from models.evaluation import evaluate_model_dir, report_table

    data = existing_dir(Path(args.data), "--data")
    model_dir = existing_dir(model_dir_arg(args.model_dir, settings), "--model-dir")
    report = evaluate_model_dir(model_dir, data, markets_arg(args.markets, settings), interval=settings.candle_interval,
                                interval_seconds=settings.interval_seconds, buy_threshold=args.buy_threshold,
                                sell_threshold=args.sell_threshold)
    meta = report["meta"]
    print(f"Out-of-sample evaluation of {model_dir} on {data}")
    print(f"Rows: windows wholly after the model's test_start {meta['test_start']}; "
          f"label: {meta['label']['horizon']} candles ahead, +-{meta['label']['threshold']:.2%} net of fees")
    print(report_table(report))
    _write_json(args.json, report)
    return 0


def cmd_backtest(args, settings: Settings) -> int:
    from bot.summary import run_summary
    from core.service.defaults import model_defaults
    from core.trading.backtest import run_backtest
    from core.trading.performance import drawdown_series
    from models.manager import MultiCoinModelManager

    data = existing_dir(Path(args.data), "--data")
    markets = markets_arg(args.markets, settings)
    model_dir = model_dir_arg(args.model_dir, settings)
    manager = MultiCoinModelManager(model_dir, markets)
    risk = risk_overrides(args.set, model_defaults(model_dir))
    start, end = instant(args.start, "--start"), instant(args.end, "--end")
    if start is not None and end is not None and start > end:
        raise UsageError(f"--start {start.isoformat()} is after --end {end.isoformat()}")
    result = run_backtest(data, markets, manager, interval=settings.candle_interval, interval_seconds=settings.interval_seconds,
                          start_krw=settings.paper_start_krw, slippage=args.slippage, settings=risk, start=start, end=end)
    print(f"Backtest of {', '.join(markets)} on {data}, paper wallet {settings.paper_start_krw:,} KRW: "
          + run_summary(result, risk))
    _write_json(args.json, result.to_json())
    if args.plot:
        from bot.charts import (
            backtest_png,  # matplotlib only when a picture is asked for
        )

        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        Path(args.plot).write_bytes(backtest_png(result.equity, result.buy_and_hold, drawdown_series))
        print(f"Equity curve written to {args.plot}")
    return 0


def _context_groups(text: str | None) -> tuple[str, ...]:
    from core.research.context import parse_groups

    if not text:
        return ()
    try:
        return parse_groups(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_walkforward(args, settings: Settings) -> int:
    needs_training_extra("walkforward")
    from bot.walkforward_view import walkforward_png, walkforward_text
    from core.research.baselines import sleeve_settings
    from core.research.walkforward import WalkForwardConfig, run_walkforward
    from core.trading.types import RiskSettings
    from models.fit import TrainConfig

    data = existing_dir(Path(args.data), "--data")
    train = existing_dir(Path(args.train_data), "--train-data") if args.train_data else data
    start = instant(args.start, "--start")
    if args.trials < 0:
        raise UsageError(f"--trials: expected 0 or more, got {args.trials}")
    markets = markets_arg(args.markets, settings)
    base = risk_overrides(args.set, sleeve_settings(len(markets), RiskSettings(take_profit=0.0)))
    config = WalkForwardConfig(start=start, base=base, test_months=args.test_months, validation_months=args.validation_months,
                               head_months=args.head_months, window=args.window, train_months=args.train_months,
                               lstm_every=args.lstm_every, labels=_label_specs(args.labels), trials=args.trials,
                               min_exposure=args.min_exposure, slippage=args.slippage,
                               train=TrainConfig(seed=args.seed, epochs=args.epochs, calibration=args.calibration,
                                                 patience=1),
                               interval=settings.candle_interval, interval_seconds=settings.interval_seconds,
                               context=_context_groups(args.context))
    storage = search_storage(args, settings)
    with cluster_runner(args) as runner:
        if not args.quiet:
            print(f"Walk-forward on {runner.name}" + (f"; search kept in {storage.where()}" if storage else ""),
                  flush=True)
        report = run_walkforward(data, markets, config, train_dir=train, progress=not args.quiet, runner=runner,
                                 storage=storage)
    print(walkforward_text(report))
    _write_json(args.json, report)
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        Path(args.plot).write_bytes(walkforward_png(report))
        print(f"Plot written to {args.plot}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train models from candle files")
    p.add_argument("--data", default=str(TRAINING_DATA), help="directory of <MARKET>_<interval>.csv files (default: bundled Binance history)")
    p.add_argument("--markets", help="comma list (default: MARKETS), or all: every market with candles in --data "
                                     "(with per-market heads); a KRW market may learn from the same coin in another quote")
    p.add_argument("--out", help="model directory to write (default: a new models/trained-<date> directory; "
                                 "never the shipped models unless --replace-shipped)")
    p.add_argument("--replace-shipped", action="store_true", help="allow --out to be the shipped models directory")
    p.add_argument("--horizon", type=int, help="label horizon in candles (default 12, or the --walkforward report's)")
    p.add_argument("--threshold", type=float, help="net return beyond which a label is BUY/SELL (default 0.005, "
                                                   "or the --walkforward report's)")
    p.add_argument("--epochs", type=int, default=6, help="maximum LSTM epochs (default 6, early stopping)")
    p.add_argument("--calibration", choices=("platt", "isotonic"), default="platt")
    p.add_argument("--per-market-heads", action="store_true", help="also fit a head per market, kept where better")
    p.add_argument("--validation-months", type=int, help="train on everything but the last N months, which calibrate "
                                                         "(the walk-forward's recipe; default: fractions of the span)")
    p.add_argument("--head-months", type=int, default=12, help="with --validation-months: months of head training")
    p.add_argument("--walkforward", help="a walkforward --json report: its defaults and summary go into the metadata")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_cluster_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="out-of-sample metrics of a model directory, beside baselines")
    p.add_argument("--model-dir", help="default: MODEL_DIR (the shipped models)")
    p.add_argument("--data", default=str(TRAINING_DATA), help="candle directory (default: bundled Binance history)")
    p.add_argument("--markets", help="comma list (default: MARKETS)")
    p.add_argument("--json", help="write the metrics as JSON to this path")
    p.add_argument("--buy-threshold", type=float, default=0.55)
    p.add_argument("--sell-threshold", type=float, default=0.55)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("backtest", help="the trading cycle over candle files, beside buy-and-hold")
    p.add_argument("--data", default=str(BUNDLED_DATA_DIR / "upbit-1h"), help="candle directory (default: bundled Upbit KRW candles)")
    p.add_argument("--markets", help="comma list (default: MARKETS)")
    p.add_argument("--model-dir", help="default: MODEL_DIR (the shipped models)")
    p.add_argument("--slippage", type=float, default=0.0005, help="paper fill slippage (default 0.0005)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a threshold or risk parameter, e.g. --set entry_margin=0.01 (repeatable)")
    p.add_argument("--start", help="first candle close to simulate, ISO-8601, UTC unless given (default: the data's first)")
    p.add_argument("--end", help="last candle close to simulate (default: the data's last)")
    p.add_argument("--json", help="write the figures as JSON to this path")
    p.add_argument("--plot", help="write an equity-curve PNG (with buy-and-hold and drawdown) to this path")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("walkforward", help="train on the past, choose on validation, trade the next period; repeat")
    p.add_argument("--data", default=str(TRAINING_DATA), help="candles to trade (default: bundled Binance history)")
    p.add_argument("--train-data", help="candles to learn from (default: --data), e.g. Binance's history for Upbit's")
    p.add_argument("--markets", help="comma list (default: MARKETS); USDT candles are priced at 1,400 KRW per USDT")
    p.add_argument("--start", default="2019-01-01", help="first test period's start (default 2019-01-01)")
    p.add_argument("--test-months", type=int, default=3, help="length of each test period (default 3)")
    p.add_argument("--validation-months", type=int, default=6, help="validation slice before it (default 6)")
    p.add_argument("--head-months", type=int, default=12, help="head-training span before that (default 12)")
    p.add_argument("--window", choices=("expanding", "rolling"), default="expanding")
    p.add_argument("--train-months", type=int, default=36, help="--window rolling: the LSTM's months of history")
    p.add_argument("--lstm-every", type=int, default=4, help="refit the LSTM every N folds (default 4: yearly)")
    p.add_argument("--labels", default="12:0.005", help="label horizon:threshold, a comma list to choose from "
                                                       "(default 12:0.005)")
    p.add_argument("--trials", type=int, default=0, help="an Optuna search for the defaults on every validation slice")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="a setting every candidate starts from (the grid still chooses entry_margin, stop_loss, "
                        "trailing_stop and cooldown_hours), e.g. --set max_consecutive_losses=5 (repeatable)")
    p.add_argument("--context", help="judge a context block beside the 46 features, for the head only: cross "
                                     "(BTC's return and volatility, breadth), long (7-day return, EMA200 distance), "
                                     "or cross,long (docs/features.md)")
    p.add_argument("--min-exposure", type=float, default=0.10, help="penalise choices invested less (default 0.10)")
    p.add_argument("--calibration", choices=("platt", "isotonic"), default="platt")
    p.add_argument("--epochs", type=int, default=6, help="maximum LSTM epochs (default 6)")
    p.add_argument("--slippage", type=float, default=0.0005, help="paper fill slippage (default 0.0005)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", help="write every fold, the overall figures and the baselines as JSON")
    p.add_argument("--plot", help="write the equity curves and per-fold bars as a PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_cluster_args(p, search=True)
    p.set_defaults(func=cmd_walkforward)
