"""Where research tasks run: in this process, on a Dask LocalCluster, or on an existing Dask cluster.

    serial          in this process, one task after another (torch and LightGBM on every core)
    local           a LocalCluster on this machine: one worker process per core, one thread each
    tcp://host:8786 a running `dask scheduler` with `dask worker ... --nthreads 1` on other machines

Every runner takes the same task functions, so the walk-forward, its search and training build one
graph whatever runs it. Tasks get paths and small parameters; each worker reads the candle files
itself, once (`worker_cache`), and the arrays a task computes travel as its result. On a cluster a
task runs with one thread for torch, LightGBM and BLAS (`TASK_ENV`), so that workers do not
oversubscribe the cores; a task whose worker dies is run again elsewhere by Dask, and since every
task is a pure function of its inputs and seeds, the result does not change.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from models.tasks import Done, SerialRunner

log = logging.getLogger(__name__)
__all__ = ["ClusterError", "DaskRunner", "Done", "SerialRunner", "check_scheduler", "connect", "local_cluster",
           "worker_cache"]

SCHEDULERS = "serial, local or tcp://host:port"
TASK_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
CONNECT_TIMEOUT_S = 10


class ClusterError(RuntimeError):
    """A scheduler that cannot be reached or a cluster that cannot start: one line, naming the address."""


class DaskRunner:
    """Tasks on a dask.distributed cluster; `submit` returns a future, arguments may be futures."""

    def __init__(self, client, name: str, owned=None):
        self.client = client
        self.name = name
        self._owned = owned
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.task_threads = 1
        self._run = uuid.uuid4().hex[:8]
        self._count = itertools.count()

    def submit(self, fn: Callable, *args, key: str = ""):
        """`key` names the task in the scheduler (made unique: a repeated key would share one result)."""
        return self.client.submit(fn, *args, key=f"{key or fn.__name__}-{self._run}-{next(self._count)}",
                                  pure=False, retries=0)

    def result(self, handle):
        return handle.result()

    def close(self) -> None:
        self.client.close()
        if self._owned is not None:
            self._owned.close()


def check_scheduler(text: str) -> str:
    """The --scheduler value, or ValueError: serial, local or tcp://host:port."""
    text = (text or "").strip()
    if text in ("serial", "local"):
        return text
    if text.startswith("tcp://"):
        host, _, port = text[len("tcp://"):].rpartition(":")
        if host and port.isdigit():
            return text
    raise ValueError(f"--scheduler: expected {SCHEDULERS}, got {text!r}")


@contextmanager
def connect(scheduler: str = "local", workers: int | None = None,
            timeout: float | None = None) -> Iterator[SerialRunner | DaskRunner]:
    """A runner for the scheduler; closed (and a LocalCluster stopped) on leaving."""
    scheduler = check_scheduler(scheduler)
    if workers is not None and workers < 1:
        raise ValueError(f"--workers: expected 1 or more, got {workers}")
    if scheduler == "serial":
        runner = SerialRunner()
    elif scheduler == "local":
        runner = _local(workers or os.cpu_count() or 1)
    else:
        runner = _remote(scheduler, timeout)
    try:
        yield runner
    finally:
        runner.close()


def quiet_dask() -> None:
    """Dask's start-up and shut-down chatter off the console; its warnings and errors stay."""
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                 "distributed.http.proxy", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.WARNING)


def local_cluster(workers: int):
    """A LocalCluster on 127.0.0.1: `workers` processes of one thread, torch and BLAS on one thread each."""
    quiet_dask()
    try:
        from distributed import LocalCluster
    except ImportError:  # pragma: no cover - dask is part of the training extra
        raise ClusterError("--scheduler local needs dask[distributed] (the training extra)") from None
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR, env=dict(TASK_ENV))


def _local(workers: int) -> DaskRunner:
    from distributed import Client

    cluster = local_cluster(workers)
    return DaskRunner(Client(cluster), f"LocalCluster with {workers} worker{'s' if workers != 1 else ''}", cluster)


def _remote(address: str, timeout: float | None = None) -> DaskRunner:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover
        raise ClusterError(f"--scheduler {address} needs dask[distributed] (the training extra)") from None
    quiet_dask()
    try:
        client = Client(address, timeout=timeout or CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout or CONNECT_TIMEOUT_S:g} s "
                           f"({reason[:160]})") from None
    runner = DaskRunner(client, f"the Dask scheduler at {address}")
    if runner.workers == 0:
        log.warning("the Dask scheduler at %s has no workers yet; tasks wait for one", address)
    return runner


_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()
CACHE_ENTRIES = 4


def worker_cache(key, build: Callable[[], Any]):
    """What `build` returns, built once per process for `key` (the last few keys are kept)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = build()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return value
