"""Figures as `name: value unit` lines: the median of repeated runs and their spread."""
from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    samples: tuple[float, ...]  # in `unit`
    unit: str
    target: str = ""  # e.g. "< 20 ms", shown beside the figure
    note: str = ""

    def line(self) -> str:
        s = sorted(self.samples)
        median = statistics.median(s)
        if len(s) == 1:
            spread = "one run"
        else:
            spread = f"median of {len(s)}; min {_num(s[0])}, max {_num(s[-1])}"
            if len(s) >= 10:
                spread += f", p90 {_num(s[int(0.9 * (len(s) - 1))])}"
        extra = "; ".join(x for x in (f"target {self.target}" if self.target else "", self.note) if x)
        return f"{self.name}: {_num(median)} {self.unit} ({spread}{'; ' + extra if extra else ''})"


def _num(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"
