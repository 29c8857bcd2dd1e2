"""The `autotrader` console script: parses arguments, calls core/models, prints results.

Exit status: 0 on success, 2 on bad usage or bad input (one line on stderr), 1 on an unexpected
failure. Heavy imports (torch, LightGBM) happen inside the subcommands that need them.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from core.data.bundled import BUNDLED_DATA_DIR
from core.data.markets import InvalidMarket, parse_markets
from core.service.registry import (
    UsageError,  # the one UsageError: bad arguments, exit 2 with its one line
)
from core.service.settings import Settings, SettingsError, load_settings
from models.shipped import SHIPPED_MODEL_DIR

log = logging.getLogger("autotrader")

TRAINING_DATA = BUNDLED_DATA_DIR / "binance-1h"


def _markets(text: str | None, settings: Settings) -> tuple[str, ...]:
    if text is None:
        return settings.markets
    try:
        return parse_markets(text, "--markets")
    except InvalidMarket as exc:
        raise UsageError(str(exc)) from None


def _existing_dir(path: Path, what: str) -> Path:
    if path.is_file() and path.name.endswith((".csv", ".csv.gz")):
        raise UsageError(f"{what} {path} is a file; give the directory that holds it: a data set is a directory of "
                         f"<MARKET>_<interval>.csv files (e.g. {path.parent}/)")
    if not path.is_dir():
        raise UsageError(f"{what} {path} is not a directory")
    return path


def _training_out(args) -> Path:
    """Where `train` writes: --out, or a new dated directory; never over the shipped models unasked."""
    if args.out:
        out = Path(args.out)
        if out.resolve() == SHIPPED_MODEL_DIR.resolve() and not args.replace_shipped:
            raise UsageError(f"--out {out} is the shipped models that `autotrader run` uses by default; write "
                             f"elsewhere and point MODEL_DIR at it, or add --replace-shipped (maintainers)")
        return out
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    out = Path("models") / f"trained-{stamp}"
    n = 2
    while out.exists():
        out, n = Path("models") / f"trained-{stamp}-{n}", n + 1
    return out


def cmd_train(args, settings: Settings) -> int:
    from models.labels import LabelSpec
    from models.training import TrainConfig, train_models

    data = _existing_dir(Path(args.data), "--data")
    markets = _markets(args.markets, settings)
    out = _training_out(args)
    spec = LabelSpec(horizon=args.horizon, threshold=args.threshold)
    config = TrainConfig(seed=args.seed, epochs=args.epochs)
    print(f"Training {', '.join(markets)} from {data} into {out} (horizon {spec.horizon}, threshold {spec.threshold:.3%})")
    report = train_models(data, markets, out, interval=settings.candle_interval, interval_seconds=settings.interval_seconds,
                          spec=spec, config=config, progress=not args.quiet)
    print("\nValidation split (used for early stopping and head selection; the test split is left for `evaluate`):")
    print(report.table())
    own = ", ".join(report.per_market_heads) or "none"
    print(f"\nPer-market heads kept (better validation log-loss than the global head): {own}")
    print(f"Trained in {report.seconds:.1f} s; models written to {out}")
    print(f"To use them: MODEL_DIR={out} autotrader run (or --model-dir {out} for run, backtest and evaluate)")
    return 0


def cmd_evaluate(args, settings: Settings) -> int:
    from models.evaluation import evaluate_model_dir, report_table

    data = _existing_dir(Path(args.data), "--data")
    model_dir = _existing_dir(Path(args.model_dir) if args.model_dir else settings.model_dir, "--model-dir")
    markets = _markets(args.markets, settings)
    report = evaluate_model_dir(model_dir, data, markets, interval=settings.candle_interval,
                                interval_seconds=settings.interval_seconds,
                                buy_threshold=args.buy_threshold, sell_threshold=args.sell_threshold)
    meta = report["meta"]
    print(f"Out-of-sample evaluation of {model_dir} on {data}")
    print(f"Rows: windows wholly after the model's test_start {meta['test_start']}; "
          f"label: {meta['label']['horizon']} candles ahead, +-{meta['label']['threshold']:.2%} net of fees")
    print(report_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"JSON written to {args.json}")
    return 0


def cmd_download(args, settings: Settings) -> int:
    from tqdm import tqdm

    from core.data.candles import INTERVAL_SECONDS
    from core.upbit.download import download_market
    from core.upbit.quotation import UpbitQuotationClient

    if args.interval not in INTERVAL_SECONDS:
        raise UsageError(f"--interval: expected one of {', '.join(INTERVAL_SECONDS)}, got {args.interval!r}")
    try:
        since = datetime.fromisoformat(args.since)
    except ValueError:
        raise UsageError(f"--since: expected a date such as 2025-01-01, got {args.since!r}") from None
    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    client = UpbitQuotationClient(args.api_url or settings.upbit_api_url)
    seconds = INTERVAL_SECONDS[args.interval]
    expected = max(1, int((datetime.now(timezone.utc) - since).total_seconds() // seconds))
    for market in _markets(args.markets, settings):
        with tqdm(total=expected, desc=market, unit="candle", disable=args.quiet) as bar:
            result = download_market(client, market, args.interval, seconds, since, Path(args.out), on_page=bar.update)
        print(f"{market}: {result.new_candles} new, {result.total_candles} in {result.path} "
              f"({result.first.isoformat()} .. {result.last.isoformat()})")
    return 0


def _risk_overrides(items: list[str] | None):
    from core.trading.types import RiskSettings

    risk = RiskSettings()
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set: expected name=value such as buy_threshold=0.45, got {item!r}")
        try:
            risk = risk.with_value(name.strip(), value.strip())
        except ValueError as exc:
            raise UsageError(f"--set: {exc}") from None
    return risk


def cmd_run(args, settings: Settings) -> int:
    from bot.summary import run_summary
    from core.runtime.assembly import RunOptions, assemble

    if settings.is_live and args.replay is not None:
        raise UsageError("--replay is paper trading on history; unset AUTOTRADER_MODE=live to replay")
    if args.speed < 0:
        raise UsageError(f"--speed: expected candles per second >= 0 (0 = as fast as possible), got {args.speed}")
    if args.db and args.replay is None:
        raise UsageError("--db is for replays; the agent uses DATABASE_URL")
    options = RunOptions(markets=_markets(args.markets, settings), defaults=_risk_overrides(args.set),
                         model_dir=Path(args.model_dir) if args.model_dir else settings.model_dir,
                         slippage=args.slippage, speed=args.speed, replay_db=args.db,
                         replay=_existing_dir(Path(args.replay), "--replay") if args.replay is not None else None)
    runtime = assemble(settings, options)
    try:
        if settings.telegram_bot_token:
            from bot.telegram_app import run_with_telegram

            print(f"autotrader: {runtime.description()} with the Telegram bot; Ctrl-C or SIGTERM stops.", flush=True)
            with _telegram_errors(settings):
                result = run_with_telegram(runtime)
        else:
            from bot.console import run_console

            result = run_console(runtime)
    finally:
        runtime.close()
    if options.replay is None:
        return 0
    if result is None:
        print("Stopped before the end of the data.")
        return 0
    print("\nSummary: " + run_summary(result, options.defaults))
    print(f"Journal: {args.db or 'sqlite:///replay.db'} (signals, orders, fills, equity, alerts, audit log)")
    return 0


@contextmanager
def _telegram_errors(settings: Settings):
    """A token Telegram refuses is a setting to fix: one line naming which token, never the token."""
    from telegram.error import InvalidToken

    from core.redaction import hint

    try:
        yield
    except InvalidToken:
        raise UsageError(f"Telegram rejected the bot token ({hint(settings.telegram_bot_token)}); check "
                         f"TELEGRAM_BOT_TOKEN") from None


def cmd_backtest(args, settings: Settings) -> int:
    from bot.charts import backtest_png
    from bot.summary import run_summary
    from core.trading.backtest import run_backtest
    from core.trading.performance import drawdown_series
    from models.manager import MultiCoinModelManager

    data = _existing_dir(Path(args.data), "--data")
    markets = _markets(args.markets, settings)
    manager = MultiCoinModelManager(Path(args.model_dir) if args.model_dir else settings.model_dir, markets)
    risk = _risk_overrides(args.set)
    start, end = _instant(args.start, "--start"), _instant(args.end, "--end")
    if start is not None and end is not None and start > end:
        raise UsageError(f"--start {start.isoformat()} is after --end {end.isoformat()}")
    result = run_backtest(data, markets, manager, interval=settings.candle_interval, interval_seconds=settings.interval_seconds,
                          start_krw=settings.paper_start_krw, slippage=args.slippage, settings=risk, start=start, end=end)
    print(f"Backtest of {', '.join(markets)} on {data}, paper wallet {settings.paper_start_krw:,} KRW: "
          + run_summary(result, risk))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2))
        print(f"JSON written to {args.json}")
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        Path(args.plot).write_bytes(backtest_png(result.equity, result.buy_and_hold, drawdown_series))
        print(f"Equity curve written to {args.plot}")
    return 0


def _instant(text: str | None, option: str):
    """An ISO-8601 date or time (UTC unless it says otherwise) as a pandas Timestamp, or None."""
    if text is None:
        return None
    import pandas as pd

    try:
        value = pd.Timestamp(text)
    except ValueError:
        raise UsageError(f"{option}: expected a date or time such as 2025-01-01 or 2025-01-01T09:00, got {text!r}") from None
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def cmd_db(args, settings: Settings) -> int:
    from core.storage.connect import shown_url
    from core.storage.history import trading_history
    from core.storage.migrate import downgrade, upgrade

    url = settings.database_url
    if args.action == "upgrade":
        upgrade(url, args.revision or "head")
        print(f"database upgrade to {args.revision or 'head'}: done ({shown_url(url)})")
        return 0
    if not args.revision:
        raise UsageError("downgrade needs a target revision, e.g. `autotrader db downgrade 0004` (one step) or "
                         "`autotrader db downgrade base --yes` (drops every table)")
    history = trading_history(url)
    if history and not args.force:
        raise UsageError(f"{shown_url(url)} holds a trading history ({history}); a downgrade may drop it. Back it up "
                         f"first (SQLite: copy the file; PostgreSQL: pg_dump), then add --force")
    if args.revision == "base" and not args.yes:
        raise UsageError(f"downgrade to base drops every table of {shown_url(url)}; add --yes if that is what you "
                         f"want (back the database up first)")
    print(f"Downgrading {shown_url(url)} to {args.revision}. A backup is your only way back: SQLite, copy the file; "
          f"PostgreSQL, pg_dump.", flush=True)
    downgrade(url, args.revision)
    print(f"database downgrade to {args.revision}: done")
    return 0


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("autotrader")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotrader", description="Autonomous trading agent for Upbit KRW markets.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("--version", action="version", version=f"autotrader {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="the agent: paper trading with the console chat (--replay: over historical candles)")
    p.add_argument("--replay", nargs="?", const=str(BUNDLED_DATA_DIR / "upbit-1h"), metavar="PATH",
                   help="replay a candle directory on a simulated clock (default: the bundled Upbit KRW candles)")
    p.add_argument("--speed", type=float, default=20.0,
                   help="replay pace in candles per second (default 20; 0 = as fast as possible)")
    p.add_argument("--markets", help="comma list (default: MARKETS)")
    p.add_argument("--model-dir", help="default: MODEL_DIR (the shipped models)")
    p.add_argument("--db", help="replay database URL; must be empty (default: replay.db, recreated each replay)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="start with this threshold or risk parameter, e.g. --set buy_threshold=0.45 (repeatable)")
    p.add_argument("--slippage", type=float, default=0.0005, help="paper fill slippage (default 0.0005)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train models from candle files")
    p.add_argument("--data", default=str(TRAINING_DATA), help="directory of <MARKET>_<interval>.csv files (default: bundled Binance history)")
    p.add_argument("--markets", help="comma list (default: MARKETS); a KRW market may learn from the same coin in another quote")
    p.add_argument("--out", help="model directory to write (default: a new models/trained-<date> directory; "
                                 "never the shipped models unless --replace-shipped)")
    p.add_argument("--replace-shipped", action="store_true", help="allow --out to be the shipped models directory")
    p.add_argument("--horizon", type=int, default=12, help="label horizon in candles (default 12)")
    p.add_argument("--threshold", type=float, default=0.005, help="net return beyond which a label is BUY/SELL (default 0.005)")
    p.add_argument("--epochs", type=int, default=6, help="maximum LSTM epochs (default 6, early stopping)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
                   help="override a threshold or risk parameter, e.g. --set buy_threshold=0.45 (repeatable)")
    p.add_argument("--start", help="first candle close to simulate, ISO-8601, UTC unless given (default: the data's first)")
    p.add_argument("--end", help="last candle close to simulate (default: the data's last)")
    p.add_argument("--json", help="write the figures as JSON to this path")
    p.add_argument("--plot", help="write an equity-curve PNG (with buy-and-hold and drawdown) to this path")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("db", help="database migrations (DATABASE_URL, SQLite by default)")
    p.add_argument("action", choices=("upgrade", "downgrade"))
    p.add_argument("revision", nargs="?", help="target revision (upgrade: default head; downgrade: required, "
                                               "e.g. 0004, or base to drop every table)")
    p.add_argument("--yes", action="store_true", help="downgrade to base: yes, drop every table")
    p.add_argument("--force", action="store_true", help="downgrade a database that holds orders or fills")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("download", help="fetch Upbit candles into the CSV format (needs internet)")
    p.add_argument("--markets", help="comma list (default: MARKETS)")
    p.add_argument("--interval", default="1h")
    p.add_argument("--since", required=True, help="first candle date, ISO-8601 (UTC if no offset)")
    p.add_argument("--out", required=True, help="directory to write <MARKET>_<interval>.csv into")
    p.add_argument("--api-url", help="Upbit REST base (default: UPBIT_API_URL)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bot.redact import install, redacted_traceback
    from core.redaction import database_password, redact

    install([])  # stderr and every log line are redacted from here on; the secrets follow once read
    from core.data.candles import CandleDataError
    from core.service.replay import ReplayDatabaseError
    from core.storage.database import DatabaseError
    from core.upbit.errors import UpbitError
    from models.hybrid import ModelLoadError

    try:
        settings = load_settings()
        install([settings.telegram_bot_token, settings.upbit_access_key, settings.upbit_secret_key,
                 database_password(settings.database_url)])
        return args.func(args, settings)
    except (UsageError, SettingsError, CandleDataError, ModelLoadError, UpbitError, ReplayDatabaseError,
            DatabaseError, ValueError) as exc:
        print(redact(f"autotrader {args.command}: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"autotrader {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: the traceback helps, but never with a secret in it
        sys.stderr.write(redacted_traceback(type(exc), exc, exc.__traceback__))
        print(redact(f"autotrader {args.command}: unexpected failure ({exc.__class__.__name__}); please report it "
                     f"with the traceback above"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
