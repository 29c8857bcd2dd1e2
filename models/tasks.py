"""Tasks run as they are submitted, in this process: the runner `train` and the walk-forward use when
no cluster is named. core.research.cluster's DaskRunner has the same two methods (`submit` returns a
handle, an argument may be a handle or a list of them; `result` waits for one)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Done:
    """A serial task's result, standing where a Dask future would."""

    value: Any

    def result(self) -> Any:
        return self.value


def _resolve(value):
    if isinstance(value, Done):
        return value.value
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    return value


class SerialRunner:
    """Runs each task when it is submitted, in this process, with the threads its configuration says."""

    name = "serial"

    def __init__(self):
        self.workers = 1
        self.task_threads = None  # as configured (TrainConfig.threads)
        self.cores = max(1, os.cpu_count() or 1)

    def submit(self, fn: Callable, *args, key: str = "") -> Done:
        return Done(fn(*(_resolve(a) for a in args)))

    def result(self, handle: Done):
        return handle.value

    def close(self) -> None:
        pass
