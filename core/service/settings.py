"""Process settings: read once from the environment (and a `.env` file), validated up front.

A bad value stops start-up with one line that names the variable, never a traceback. Secrets
(Telegram token, Upbit keys) are kept out of `repr` so that logging a Settings object is safe.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import time, timezone
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from core.i18n import check_language

from core.data.intervals import INTERVAL_SECONDS
from core.data.markets import DEFAULT_MARKETS, InvalidMarket, parse_markets
from models.shipped import SHIPPED_MODEL_DIR


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    mode: str = "paper"
    database_url: str = "sqlite:///autotrader.db"
    markets: tuple[str, ...] = DEFAULT_MARKETS
    model_dir: Path = SHIPPED_MODEL_DIR
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_admin_ids: frozenset[int] = frozenset()
    telegram_viewer_ids: frozenset[int] = frozenset()
    upbit_api_url: str = "https://api.upbit.com"
    upbit_ws_url: str | None = "wss://api.upbit.com/websocket/v1"  # the trade stream; None: REST polling only
    paper_start_krw: int = 1_000_000
    candle_interval: str = "1h"
    cycle_seconds: float | None = None
    daily_summary_utc: str | None = "00:05"  # HH:MM UTC for the daily summary alert; None = off
    max_order_krw: float = 0.0  # hard cap per buy order (0 = none; live mode needs one)
    max_daily_krw: float = 0.0  # hard cap on KRW spent on buys per UTC day (0 = none; live mode needs one)
    language: str = "ko"  # BOT_LANGUAGE: what chats read until they choose with /language
    display_timezone: str = "Asia/Seoul"  # DISPLAY_TIMEZONE: the zone shown times are in (stored times stay UTC)
    retrain_at: str | None = "03:00"  # RETRAIN_AT: HH:MM Korea time (KST) of the daily retraining; None = off
    retrain_every_days: int = 1  # RETRAIN_EVERY_DAYS
    model_store: Path | None = None  # MODEL_STORE: trained versions (default: model-store beside the database)
    data_dir: Path | None = None  # DATA_DIR: the candles retraining learns from (default: data-store beside it)
    retrain_recent_days: int = 30  # RETRAIN_RECENT_DAYS: the period a challenger is judged on
    retrain_history_days: int = 730  # RETRAIN_HISTORY_DAYS: how far back a market's first download reaches
    retrain_budget_minutes: float = 60.0  # RETRAIN_BUDGET_MINUTES: a trainer running longer is stopped
    retrain_epochs: int = 6  # RETRAIN_EPOCHS: the LSTM's maximum epochs
    retrain_samples: int = 60_000  # RETRAIN_SAMPLES: windows drawn per LSTM epoch
    telegram_bot_token: str | None = field(default=None, repr=False)
    upbit_access_key: str | None = field(default=None, repr=False)
    upbit_secret_key: str | None = field(default=None, repr=False)

    @property
    def interval_seconds(self) -> int:
        return INTERVAL_SECONDS[self.candle_interval]

    @property
    def is_live(self) -> bool:
        return self.mode == "live"

    @property
    def retrain_at_utc(self) -> time | None:
        """RETRAIN_AT (Korea time, UTC+9 all year) as a UTC time of day."""
        if self.retrain_at is None:
            return None
        hour, minute = (int(x) for x in self.retrain_at.split(":"))
        return time((hour - 9) % 24, minute, tzinfo=timezone.utc)



def _ids(variable: str, text: str) -> frozenset[int]:
    ids = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise SettingsError(f"{variable}: {part!r} is not a numeric Telegram id") from None
    return frozenset(ids)


def _url(variable: str, text: str) -> str:
    if not re.match(r"^https?://[^\s/]+", text):
        raise SettingsError(f"{variable}: expected an http(s) URL, got {text!r}")
    return text.rstrip("/")


def check_zone(name: str) -> str:
    """An IANA time zone name the zone database knows (tzdata ships it where the system has none)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"DISPLAY_TIMEZONE: unknown time zone {name!r}; an IANA name such as Asia/Seoul "
                            f"or UTC") from None
    return name


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Settings from `environ` (default: os.environ) over the values of `env_file` if it exists."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = values.get(name)
        return value.strip() if value is not None and value.strip() != "" else None

    kwargs: dict = {}
    mode = (get("AUTOTRADER_MODE") or "paper").lower()
    if mode not in ("paper", "live"):
        raise SettingsError(f"AUTOTRADER_MODE: expected 'paper' or 'live', got {mode!r}")
    kwargs["mode"] = mode
    if (url := get("DATABASE_URL")) is not None:
        if "://" not in url:
            raise SettingsError("DATABASE_URL: expected an SQLAlchemy URL such as sqlite:///autotrader.db")
        kwargs["database_url"] = url
    if (markets := get("MARKETS")) is not None:
        try:
            kwargs["markets"] = parse_markets(markets)
        except InvalidMarket as exc:
            raise SettingsError(str(exc)) from None
    if (model_dir := get("MODEL_DIR")) is not None:
        kwargs["model_dir"] = Path(model_dir).expanduser()
    kwargs["telegram_bot_token"] = get("TELEGRAM_BOT_TOKEN")
    if (base := get("TELEGRAM_API_BASE_URL")) is not None:
        kwargs["telegram_api_base_url"] = _url("TELEGRAM_API_BASE_URL", base)
    kwargs["telegram_admin_ids"] = _ids("TELEGRAM_ADMIN_IDS", get("TELEGRAM_ADMIN_IDS") or "")
    kwargs["telegram_viewer_ids"] = _ids("TELEGRAM_VIEWER_IDS", get("TELEGRAM_VIEWER_IDS") or "")
    kwargs["upbit_access_key"] = get("UPBIT_ACCESS_KEY")
    kwargs["upbit_secret_key"] = get("UPBIT_SECRET_KEY")
    if (upbit := get("UPBIT_API_URL")) is not None:
        kwargs["upbit_api_url"] = _url("UPBIT_API_URL", upbit)
        if kwargs["upbit_api_url"] != Settings.upbit_api_url:  # another server: its stream's address is not known
            kwargs["upbit_ws_url"] = None
    if (stream := get("UPBIT_WS_URL")) is not None:
        if stream.lower() == "off":
            kwargs["upbit_ws_url"] = None
        elif not re.match(r"^wss?://[^\s/]+", stream):
            raise SettingsError(f"UPBIT_WS_URL: expected a ws:// or wss:// URL, or off; got {stream!r}")
        else:
            kwargs["upbit_ws_url"] = stream
    if (start := get("PAPER_START_KRW")) is not None:
        try:
            kwargs["paper_start_krw"] = int(start.replace("_", ""))
        except ValueError:
            raise SettingsError(f"PAPER_START_KRW: expected a whole number of KRW, got {start!r}") from None
        if kwargs["paper_start_krw"] < 5_000:
            raise SettingsError("PAPER_START_KRW: must be at least 5000 (Upbit's minimum order)")
    if (interval := get("CANDLE_INTERVAL")) is not None:
        if interval not in INTERVAL_SECONDS:
            raise SettingsError(
                f"CANDLE_INTERVAL: expected one of {', '.join(INTERVAL_SECONDS)}, got {interval!r}"
            )
        kwargs["candle_interval"] = interval
    if (cycle := get("CYCLE_SECONDS")) is not None:
        try:
            kwargs["cycle_seconds"] = float(cycle)
        except ValueError:
            raise SettingsError(f"CYCLE_SECONDS: expected a number of seconds, got {cycle!r}") from None
        if kwargs["cycle_seconds"] <= 0:
            raise SettingsError("CYCLE_SECONDS: must be positive")
    if "DAILY_SUMMARY_UTC" in values:
        kwargs["daily_summary_utc"] = time_of_day_or_off(values, "DAILY_SUMMARY_UTC", "in UTC such as 00:05")
    for variable, key in (("MAX_ORDER_KRW", "max_order_krw"), ("MAX_DAILY_KRW", "max_daily_krw")):
        if (text := get(variable)) is not None:
            try:
                kwargs[key] = float(text.replace("_", "").replace(",", ""))
            except ValueError:
                raise SettingsError(f"{variable}: expected an amount of KRW such as 100000, got {text!r}") from None
            if kwargs[key] < 0 or (0 < kwargs[key] < 5_000):
                raise SettingsError(f"{variable}: must be 0 (no limit) or at least 5000 (Upbit's minimum order)")
    if (code := get("BOT_LANGUAGE")) is not None:
        try:
            kwargs["language"] = check_language(code)
        except ValueError as exc:
            raise SettingsError(f"BOT_LANGUAGE: {exc}") from None
    if (zone := get("DISPLAY_TIMEZONE")) is not None:
        kwargs["display_timezone"] = check_zone(zone)
    kwargs.update(_retraining(values, get))
    if mode == "live":
        if not (kwargs["upbit_access_key"] and kwargs["upbit_secret_key"]):
            raise SettingsError("AUTOTRADER_MODE=live needs UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY")
        if not (kwargs.get("max_order_krw") and kwargs.get("max_daily_krw")):
            raise SettingsError("AUTOTRADER_MODE=live needs MAX_ORDER_KRW and MAX_DAILY_KRW (KRW per buy order and "
                                "per day): decide what the bot may spend before it trades real money")
    return Settings(**kwargs)


def time_of_day_or_off(values: Mapping[str, str], variable: str, example: str) -> str | None:
    """HH:MM, or None for `off` (or empty)."""
    text = (values[variable] or "").strip()
    if text.lower() in ("", "off"):
        return None
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", text):
        raise SettingsError(f"{variable}: expected HH:MM {example}, or off; got {text!r}")
    return text


def _retraining(values: Mapping[str, str], get) -> dict:
    """RETRAIN_AT, RETRAIN_EVERY_DAYS, MODEL_STORE, DATA_DIR and the trainer's budget and size."""
    out: dict = {}
    if "RETRAIN_AT" in values:
        out["retrain_at"] = time_of_day_or_off(values, "RETRAIN_AT", "in Korea time such as 03:00")
    for variable, key in (("MODEL_STORE", "model_store"), ("DATA_DIR", "data_dir")):
        if (text := get(variable)) is not None:
            out[key] = Path(text).expanduser()
    for variable, key, kind, low in (("RETRAIN_EVERY_DAYS", "retrain_every_days", int, 1),
                                     ("RETRAIN_RECENT_DAYS", "retrain_recent_days", int, 7),
                                     ("RETRAIN_HISTORY_DAYS", "retrain_history_days", int, 60),
                                     ("RETRAIN_BUDGET_MINUTES", "retrain_budget_minutes", float, 1),
                                     ("RETRAIN_EPOCHS", "retrain_epochs", int, 1),
                                     ("RETRAIN_SAMPLES", "retrain_samples", int, 500)):
        if (text := get(variable)) is not None:
            try:
                value = kind(text.replace("_", ""))
            except ValueError:
                raise SettingsError(f"{variable}: expected a number, got {text!r}") from None
            if value < low:
                raise SettingsError(f"{variable}: must be at least {low}")
            out[key] = value
    return out
