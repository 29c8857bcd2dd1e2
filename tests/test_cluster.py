"""Research on a Dask cluster: the same walk-forward in this process and on a LocalCluster of two
workers, a worker killed mid-fold (the fold reruns elsewhere, the result does not change), a search
interrupted mid-batch that resumes from its storage (SQLite and PostgreSQL) as if it had never
stopped, and a scheduler that cannot be reached (one line naming it)."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import replace

import pytest

from core.research.cluster import ClusterError, DaskRunner, connect, local_cluster
from core.research.search import BATCH, search
from core.research.search_storage import SearchStorage
from core.research.selection import SliceScore
from core.research.walkforward import run_walkforward
from core.trading.types import RiskSettings
from tests.conftest import fresh_database
from tests.test_walkforward import CONFIG, MARKETS, wf_data  # noqa: F401 - the module's candles fixture

SEARCHED = replace(CONFIG, trials=BATCH + 2)  # more than one batch: the batches follow each other the same way


def comparable(report: dict) -> str:
    out = {k: v for k, v in report.items() if k not in ("seconds", "ran_on")}
    out["folds"] = [{k: v for k, v in f.items() if k != "seconds"} for f in report["folds"]]
    return json.dumps(out, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def serial(wf_data):  # noqa: F811
    return run_walkforward(wf_data, MARKETS, SEARCHED, progress=False)


def test_a_localcluster_of_two_workers_gives_the_serial_result(wf_data, serial):  # noqa: F811
    with connect("local", workers=2) as runner:
        assert runner.workers == 2 and runner.task_threads == 1
        distributed = run_walkforward(wf_data, MARKETS, SEARCHED, progress=False, runner=runner)
    assert distributed["ran_on"] == "LocalCluster with 2 workers" and serial["ran_on"] == "serial"
    assert distributed["defaults"]["search"]["trials"] == SEARCHED.trials
    assert comparable(distributed) == comparable(serial)


def test_a_worker_killed_mid_fold_is_replaced_and_the_result_does_not_change(wf_data, serial):  # noqa: F811
    cluster = local_cluster(2)
    try:
        with connect(f"tcp://{cluster.scheduler_address.removeprefix('tcp://')}") as runner:  # the tcp:// path
            assert isinstance(runner, DaskRunner) and runner.workers == 2
            pids = runner.client.run(os.getpid)
            out: dict = {}
            worker = threading.Thread(target=lambda: out.update(report=run_walkforward(
                wf_data, MARKETS, SEARCHED, progress=False, runner=runner)), daemon=True)
            worker.start()
            killed = None
            deadline = time.monotonic() + 60
            while killed is None and time.monotonic() < deadline and worker.is_alive():
                for address, keys in runner.client.processing().items():
                    if any(str(k).startswith("wf-fold-") for k in keys):
                        os.kill(pids[address], signal.SIGKILL)
                        killed = address
                        break
                time.sleep(0.05)
            worker.join(timeout=240)
            assert killed is not None, "no fold task was seen running"
            assert not worker.is_alive() and "report" in out
            assert comparable(out["report"]) == comparable(serial)
            assert pids[killed] not in runner.client.run(os.getpid).values()  # a new process took its place
    finally:
        cluster.close()


def _slices(candidate):
    sharpe = 2.0 - 100 * abs(candidate.settings.entry_margin - 0.01) - candidate.settings.stop_loss
    return [SliceScore(sharpe, 20, 0.5, 0.01)] * 3


class Stopped(Exception):
    pass


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_interrupted_search_resumes_from_its_storage_as_if_it_had_never_stopped(kind, tmp_path):
    base, trials = RiskSettings(), 2 * BATCH + 3
    with fresh_database(kind, tmp_path) as url:
        whole: list = []
        uninterrupted = search(base, 1, lambda batch: whole.extend(batch) or [_slices(c) for c in batch], trials,
                               0.1, seed=5)
        storage = SearchStorage(url)
        first: list = []

        def stops_in_the_second_batch(batch):
            if first:
                raise Stopped  # the trials of this batch were asked (stored) but never told
            first.extend(batch)
            return [_slices(c) for c in batch]

        with pytest.raises(Stopped):
            search(base, 1, stops_in_the_second_batch, trials, 0.1, seed=5, storage=storage, study="s")
        rest: list = []
        resumed = search(base, 1, lambda batch: rest.extend(batch) or [_slices(c) for c in batch], trials, 0.1,
                         seed=5, storage=storage, study="s")
        assert resumed.resumed == BATCH and resumed.trials == trials and len(rest) == trials - BATCH
        assert first + rest == whole  # the same trials in the same order: resumed as if never stopped
        assert (resumed.best, resumed.score) == (uninterrupted.best, uninterrupted.score)
        again = search(base, 1, lambda batch: pytest.fail("nothing is left to run"), trials, 0.1, seed=5,
                       storage=storage, study="s")
        assert again.resumed == trials and again.best == resumed.best
        if kind == "postgresql":
            from sqlalchemy import create_engine, inspect

            engine = create_engine(url)
            try:
                assert "studies" in inspect(engine).get_table_names(schema="optuna")
                assert "studies" not in inspect(engine).get_table_names()  # not among the project's tables
            finally:
                engine.dispose()
        else:
            assert (tmp_path / "test.optuna.db").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_cannot_be_reached_is_one_line_naming_it(wf_data, capsys, monkeypatch):  # noqa: F811
    from bot import cli
    from core.research import cluster

    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ClusterError, match=f"cannot reach the Dask scheduler at {address}"):
        with connect(address, timeout=1):
            pass
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    assert cli.main(["walkforward", "--data", str(wf_data), "--markets", ",".join(MARKETS), "--scheduler", address,
                     "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and address in err and "Traceback" not in err
    assert cli.main(["walkforward", "--data", str(wf_data), "--scheduler", "nowhere"]) == 2
    assert "--scheduler: expected serial, local or tcp://host:port" in capsys.readouterr().err


def _model_files(directory) -> dict:
    """What a model directory holds, but its creation time and the thread count its heads ran with."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix != ".pt":  # the torch pickle's bytes carry its own record ids
            text = path.read_bytes()
            if path.name == "model_metadata.json":
                meta = json.loads(text)
                meta.pop("created_at")
                text = json.dumps(meta, sort_keys=True).encode()
            elif path.suffix == ".txt":
                text = text.split(b"\nparameters:\n")[0]
            elif path.name == "training_report.json":
                report = json.loads(text)
                text = json.dumps({k: v for k, v in report.items() if k not in ("seconds", "ran_on")}).encode()
            out[str(path.relative_to(directory))] = text
    return out


def test_training_on_two_workers_writes_the_models_a_serial_training_writes(small_dataset, tmp_path):
    from models.lstm import EncoderConfig
    from models.training import TrainConfig, train_models

    config = TrainConfig(encoder=EncoderConfig(hidden_size=8, embedding_size=8), epochs=1, samples_per_epoch=1500,
                         head_rounds=25, per_market_heads=True)
    markets = ["KRW-BTC", "KRW-ETH"]
    serial = train_models(small_dataset, markets, tmp_path / "serial", config=config, progress=False)
    with connect("local", workers=2) as runner:
        distributed = train_models(small_dataset, markets, tmp_path / "cluster", config=config, progress=False,
                                   runner=runner)
    assert distributed.markets == serial.markets and distributed.per_market_heads == serial.per_market_heads
    files = _model_files(tmp_path / "serial")
    assert {"global/model_metadata.json", "global/lightgbm.txt", "global/lstm.npz", "baselines/lightgbm_last_step.txt",
            "training_report.json"} <= set(files)
    assert {f"{m}/lightgbm.txt" for m in serial.per_market_heads} <= set(files)
    assert _model_files(tmp_path / "cluster") == files
    assert json.loads((tmp_path / "cluster" / "training_report.json").read_text())["ran_on"] == \
        "LocalCluster with 2 workers"


def test_train_markets_all_is_every_market_with_candles(small_dataset, tmp_path, capsys):
    from bot import cli
    from bot.cli_research import _every_market
    from core.service.settings import Settings

    assert _every_market(small_dataset, Settings()) == ("KRW-BTC", "KRW-ETH")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["train", "--data", str(empty), "--markets", "all", "--out", str(tmp_path / "m")]) == 2
    assert "autotrader download --all-krw" in capsys.readouterr().err
