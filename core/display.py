"""How do numbers and times read? The one set of formatting helpers for replies, alerts and summaries.

Amounts of KRW read `1,234,567원` in Korean and `KRW 1,234,567` in English; times are shown in
`DISPLAY_TIMEZONE` (default Asia/Seoul) with the zone's name, while storage, logs and schedules stay
in UTC.
"""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.i18n import current_language

DEFAULT_ZONE = "Asia/Seoul"
_zone: list[tzinfo] = []


def set_display_zone(name: str) -> None:
    """The zone every shown time is converted to; ValueError for a name the zone database lacks."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Seoul or UTC)") from None
    _zone[:] = [zone]


def display_zone() -> tzinfo:
    if not _zone:
        set_display_zone(DEFAULT_ZONE)
    return _zone[0]


def _amount(text: str) -> str:
    return f"{text}원" if current_language() == "ko" else f"KRW {text}"


def krw(value: float) -> str:
    return _amount(f"{value:,.0f}")


def signed_krw(value: float) -> str:
    return _amount(f"{value:+,.0f}")


def volume(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".")


def percent(value: float, signed: bool = True) -> str:
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def local(value: datetime) -> datetime:
    """`value` (UTC if it has no zone) in the display zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(display_zone())


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    shown = local(value)
    return f"{shown:%Y-%m-%d %H:%M} {shown.tzname()}"


def clock(value: datetime) -> str:
    """Only the time of day, with the zone: `14:05:00 KST`."""
    shown = local(value)
    return f"{shown:%H:%M:%S} {shown.tzname()}"


def day(value) -> str:
    """A date as stored (days, weeks and months are counted in UTC)."""
    return f"{value:%Y-%m-%d}"
