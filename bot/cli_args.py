"""How are the CLI's arguments read? Markets, directories, instants and --set overrides, each refused
with one line (UsageError, exit 2) that names the option and the form it wants."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from core.data.markets import InvalidMarket, parse_markets
from core.service.registry import UsageError
from core.service.settings import Settings
from core.trading.types import RiskSettings
from models.shipped import SHIPPED_MODEL_DIR

if TYPE_CHECKING:
    import pandas as pd


def markets_arg(text: str | None, settings: Settings) -> tuple[str, ...]:
    if text is None:
        return settings.markets
    try:
        return parse_markets(text, "--markets")
    except InvalidMarket as exc:
        raise UsageError(str(exc)) from None


def existing_dir(path: Path, what: str) -> Path:
    if path.is_file() and path.name.endswith((".csv", ".csv.gz")):
        raise UsageError(f"{what} {path} is a file; give the directory that holds it: a data set is a directory of "
                         f"<MARKET>_<interval>.csv files (e.g. {path.parent}/)")
    if not path.is_dir():
        raise UsageError(f"{what} {path} is not a directory")
    return path


def existing_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UsageError(f"{what} {path} is not a file")
    return path


def instant(text: str | None, option: str) -> "pd.Timestamp | None":
    """An ISO-8601 date or time (UTC unless it says otherwise), or None."""
    if text is None:
        return None
    import pandas as pd  # only the commands that take an instant load pandas (`--help` does not)

    try:
        value = pd.Timestamp(text)
    except ValueError:
        raise UsageError(f"{option}: expected a date or time such as 2025-01-01 or 2025-01-01T09:00, got {text!r}") from None
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def risk_overrides(items: list[str] | None, base: RiskSettings = RiskSettings()) -> RiskSettings:
    risk = base
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set: expected name=value such as buy_threshold=0.45, got {item!r}")
        try:
            risk = risk.with_value(name.strip(), value.strip())
        except ValueError as exc:
            raise UsageError(f"--set: {exc}") from None
    return risk


def model_dir_arg(text: str | None, settings: Settings) -> Path:
    return Path(text) if text else settings.model_dir


def training_out(out: str | None, replace_shipped: bool) -> Path:
    """Where `train` writes: --out, or a new dated directory; never over the shipped models unasked."""
    if out:
        path = Path(out)
        if path.resolve() == SHIPPED_MODEL_DIR.resolve() and not replace_shipped:
            raise UsageError(f"--out {path} is the shipped models that `autotrader run` uses by default; write "
                             f"elsewhere and point MODEL_DIR at it, or add --replace-shipped (maintainers)")
        return path
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    path, n = Path("models") / f"trained-{stamp}", 2
    while path.exists():
        path, n = Path("models") / f"trained-{stamp}-{n}", n + 1
    return path
