"""The `autotrader` console script: parses arguments, calls core/models, prints results.

Exit status: 0 on success, 2 on bad usage or bad input (one line on stderr), 1 on an unexpected
failure. Heavy imports (torch, LightGBM) happen inside the subcommands that need them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bot.cli_args import existing_dir, markets_arg, model_dir_arg, risk_overrides
from bot.cli_health import add_parser as add_health_parser
from bot.cli_models import add_parser as add_models_parser
from bot.cli_research import add_parsers
from core.data.bundled import BUNDLED_DATA_DIR
from core.service.about import version
from core.service.registry import (
    UsageError,  # the one UsageError: bad arguments, exit 2 with its one line
)
from core.service.settings import Settings, SettingsError, load_settings

log = logging.getLogger("autotrader")


def cmd_download(args, settings: Settings) -> int:
    from tqdm import tqdm

    from core.data.candles import INTERVAL_SECONDS, CandleDataError
    from core.upbit.download import download_market
    from core.upbit.errors import UpbitError
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
    if args.all_krw and args.markets:
        raise UsageError("--all-krw and --markets: give one or the other")
    markets = client.markets("KRW") if args.all_krw else markets_arg(args.markets, settings)
    if args.all_krw:
        print(f"Upbit lists {len(markets)} KRW markets; each file resumes where it stopped if this is run again")
    failed = []
    for market in markets:
        with tqdm(total=expected, desc=market, unit="candle", disable=args.quiet) as bar:
            try:
                result = download_market(client, market, args.interval, seconds, since, Path(args.out),
                                         on_page=bar.update)
            except (UpbitError, CandleDataError, OSError) as exc:
                if not args.all_krw:
                    raise
                failed.append(market)  # one market's trouble does not stop the other 150
                print(f"{market}: not downloaded: {exc}", file=sys.stderr)
                continue
        print(f"{market}: {result.new_candles} new, {result.total_candles} in {result.path} "
              f"({result.first.isoformat()} .. {result.last.isoformat()})")
    if failed:
        print(f"{len(failed)} of {len(markets)} markets not downloaded ({', '.join(failed)}); run the same command "
              f"again to fetch what is missing", file=sys.stderr)
        return 2
    return 0


def cmd_run(args, settings: Settings) -> int:
    if settings.is_live and args.replay is not None:
        raise UsageError("--replay is paper trading on history; unset AUTOTRADER_MODE=live to replay")
    if args.speed < 0:
        raise UsageError(f"--speed: expected candles per second >= 0 (0 = as fast as possible), got {args.speed}")
    if args.db and args.replay is None:
        raise UsageError("--db is for replays; the agent uses DATABASE_URL")
    from bot.summary import run_summary  # the model and trading stack load only once the arguments are good
    from core.runtime.assembly import RunOptions, assemble
    from core.service.defaults import model_defaults

    model_dir = model_dir_arg(args.model_dir, settings)
    options = RunOptions(markets=markets_arg(args.markets, settings),
                         defaults=risk_overrides(args.set, model_defaults(model_dir)), model_dir=model_dir,
                         slippage=args.slippage, speed=args.speed, replay_db=args.db,
                         replay=existing_dir(Path(args.replay), "--replay") if args.replay is not None else None)
    runtime = assemble(settings, options)
    try:
        if settings.telegram_bot_token:
            from bot.telegram_app import run_with_telegram

            from bot.messages import mode
            from core.i18n import _

            print(_("autotrader: {mode}, {markets}, with the Telegram bot; Ctrl-C or SIGTERM stops.").format(
                mode=mode(runtime.agent.mode), markets=", ".join(runtime.agent.markets)), flush=True)
            with _telegram_errors(settings):
                result = run_with_telegram(runtime)
        else:
            from bot.console import run_console

            result = run_console(runtime)
    finally:
        runtime.close()
    if options.replay is None:
        return 0
    from core.i18n import _

    if result is None:
        print(_("Stopped before the end of the data."))
        return 0
    print("\n" + _("Summary: {summary}").format(summary=run_summary(result, options.defaults)))
    print(_("Journal: {url} (signals, orders, fills, equity, alerts, audit log)").format(
        url=args.db or "sqlite:///replay.db"))
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
                         f"first (SQLite: stop the bot, then copy the file, and its -wal file if there is one; "
                         f"PostgreSQL: pg_dump), then add --force")
    if args.revision == "base" and not args.yes:
        raise UsageError(f"downgrade to base drops every table of {shown_url(url)}; add --yes if that is what you "
                         f"want (back the database up first)")
    print(f"Downgrading {shown_url(url)} to {args.revision}. A backup is your only way back: SQLite, stop the bot and "
          f"copy the file (and its -wal file); PostgreSQL, pg_dump.", flush=True)
    downgrade(url, args.revision)
    print(f"database downgrade to {args.revision}: done")
    return 0


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

    add_parsers(sub)
    add_models_parser(sub)
    add_health_parser(sub)

    p = sub.add_parser("db", help="database migrations (DATABASE_URL, SQLite by default)")
    p.add_argument("action", choices=("upgrade", "downgrade"))
    p.add_argument("revision", nargs="?", help="target revision (upgrade: default head; downgrade: required, "
                                               "e.g. 0004, or base to drop every table)")
    p.add_argument("--yes", action="store_true", help="downgrade to base: yes, drop every table")
    p.add_argument("--force", action="store_true", help="downgrade a database that holds orders or fills")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("download", help="fetch Upbit candles into the CSV format (needs internet)")
    p.add_argument("--markets", help="comma list (default: MARKETS)")
    p.add_argument("--all-krw", action="store_true", help="every KRW market Upbit lists (/v1/market/all)")
    p.add_argument("--interval", default="1h")
    p.add_argument("--since", required=True, help="first candle date, ISO-8601 (UTC if no offset)")
    p.add_argument("--out", required=True, help="directory to write <MARKET>_<interval>.csv into")
    p.add_argument("--api-url", help="Upbit REST base (default: UPBIT_API_URL)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_download)
    return parser


# The failures that are the user's input or environment (one line, exit 2), by the module defining
# each: a command that never imported that module cannot have raised it, so nothing is imported here.
USER_ERRORS = (("core.data.candles", "CandleDataError"), ("models.errors", "ModelLoadError"),
               ("core.upbit.errors", "UpbitError"), ("core.service.replay", "ReplayDatabaseError"),
               ("core.storage.connect", "DatabaseError"), ("core.research.cluster", "ClusterError"),
               ("core.research.search_storage", "SearchStorageError"))


def user_errors() -> tuple[type, ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in USER_ERRORS if module in sys.modules)


def apply_display(settings: Settings) -> None:
    """The default language and the zone of shown times, for every text this process writes."""
    from core.display import set_display_zone
    from core.i18n import set_default_language

    set_default_language(settings.language)
    set_display_zone(settings.display_timezone)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bot.redact import install, redacted_traceback
    from core.redaction import database_password, redact
    from core.service.logbook import RECENT

    logging.getLogger().addHandler(RECENT)  # what /logs shows; filtered by install() like every handler

    install([])  # stderr and every log line are redacted from here on; the secrets follow once read
    try:
        settings = load_settings()
        apply_display(settings)
        install([settings.telegram_bot_token, settings.upbit_access_key, settings.upbit_secret_key,
                 database_password(settings.database_url)])
        return args.func(args, settings)
    except KeyboardInterrupt:
        print(f"autotrader {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, (UsageError, SettingsError, ValueError) + user_errors()):
            print(redact(f"autotrader {args.command}: {exc}"), file=sys.stderr)
            return 2
        # a bug: the traceback helps, but never with a secret in it
        sys.stderr.write(redacted_traceback(type(exc), exc, exc.__traceback__))
        print(redact(f"autotrader {args.command}: unexpected failure ({exc.__class__.__name__}); please report it "
                     f"with the traceback above"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
