"""Which autotrader is this? Its installed version and the Python it runs on."""
from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed


def version() -> str:
    try:
        return installed("autotrader")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def python() -> str:
    return platform.python_version()
