"""The one `render`: every reply type registers its words here (bot/views.py, bot/views_history.py)."""
from __future__ import annotations

from functools import singledispatch


@singledispatch
def render(result) -> str:
    raise TypeError(f"no view for {type(result).__name__}")
