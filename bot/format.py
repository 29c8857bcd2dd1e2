"""How do numbers and times read? The one set of formatting helpers for replies, alerts and summaries."""
from __future__ import annotations

from datetime import datetime


def krw(value: float) -> str:
    return f"{value:,.0f} KRW"


def signed_krw(value: float) -> str:
    return f"{value:+,.0f} KRW"


def volume(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".")


def percent(value: float, signed: bool = True) -> str:
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"
