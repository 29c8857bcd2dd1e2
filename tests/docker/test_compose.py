"""The Docker image and compose.yaml, for real: CI's Docker step (.ci/docker.sh) builds the images and
runs this with AUTOTRADER_DOCKER_TEST=1; the normal suite skips it at once.

`autotrader backtest` runs inside the image with no network at all. Then compose.yaml (with the
host-network override beside this file) brings up the bot in paper mode against PostgreSQL in a second
container; the bot talks to the suite's fake Upbit and fake Bot API on 127.0.0.1. A command through the
Bot API is answered, `docker stop` ends the bot with exit 0, and after both containers are removed and
created again the position and the changed threshold are still there, on the volumes.
Every wait is bounded; the containers and volumes made here are removed at the end.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("AUTOTRADER_DOCKER_TEST") == "1"
pytestmark = pytest.mark.skipif(not ENABLED, reason="CI's Docker step runs this (.ci/docker.sh sets AUTOTRADER_DOCKER_TEST=1)")

DOCKER = os.environ.get("DOCKER", "docker")
COMPOSE = os.environ.get("DOCKER_COMPOSE", "docker-compose")
IMAGE = os.environ.get("AUTOTRADER_IMAGE", "autotrader:ci")
DB_IMAGE = os.environ.get("AUTOTRADER_DB_IMAGE", "autotrader-ci-postgres:15")
PG_PORT = int(os.environ.get("AUTOTRADER_DOCKER_PG_PORT", "55432"))  # never 54329: the suite's server
ADMIN = 111


def sh(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module", autouse=True)
def docker_engine():
    """In the Docker step a missing engine or image is a failure, never a skip."""
    for tool in (DOCKER, COMPOSE):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (.ci/docker.sh installs Debian's docker.io and docker-compose)")
    if sh(DOCKER, "info", check=False, timeout=30).returncode != 0:
        pytest.fail("the Docker engine does not answer (.ci/docker.sh starts dockerd)")
    for image in (IMAGE, DB_IMAGE):
        if sh(DOCKER, "image", "inspect", image, check=False, timeout=30).returncode != 0:
            pytest.fail(f"image {image} is missing: .ci/docker.sh builds it")


def test_the_image_runs_a_backtest_offline_as_a_non_root_user():
    config = json.loads(sh(DOCKER, "image", "inspect", IMAGE).stdout)[0]["Config"]
    assert config["User"] == "autotrader" and config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"] == ["CMD", "autotrader", "health"]
    assert config["Entrypoint"] == ["autotrader"] and config["Cmd"] == ["run"]
    probe = sh(DOCKER, "run", "--rm", "--network", "none", "--entrypoint", "python", IMAGE, "-c",
               "import os, torch; print(os.getuid(), torch.__version__)")
    assert probe.stdout.split() == ["10001", "2.13.0+cpu"]

    started = time.monotonic()
    result = sh(DOCKER, "run", "--rm", "--network", "none", "-e", "BOT_LANGUAGE=en", IMAGE,
                "backtest", "--markets", "KRW-BTC,KRW-ETH", timeout=300)
    assert "| Total return |" in result.stdout, result.stdout[-2000:]
    assert "buy and hold" in result.stdout.lower()
    print(f"backtest in the container: {time.monotonic() - started:.1f} s")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL does: TIME_WAIT is no owner
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


class Project:
    """compose.yaml with the host-network override, as one project of its own in a scratch directory
    (its .env: the test's settings, as a user's .env holds theirs)."""

    def __init__(self, directory: Path, env: dict[str, str]):
        self.name = f"autotrader-docker-test-{secrets.token_hex(3)}"
        (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.base = [COMPOSE, "--ansi", "never", "-p", self.name, "-f", str(ROOT / "compose.yaml"),
                     "-f", str(ROOT / "tests" / "docker" / "compose.host.yaml"), "--project-directory", str(directory)]

    def __call__(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        return sh(*self.base, *args, timeout=timeout, check=check)

    def container(self, service: str) -> str:
        ids = self("ps", "-q", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def state(self, service: str) -> dict:
        return json.loads(sh(DOCKER, "inspect", self.container(service)).stdout)[0]["State"]

    def wait_healthy(self, service: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(service)
            health = state.get("Health", {})
            if health.get("Status") == "healthy":
                return
            assert state["Status"] == "running", f"{service} is {state['Status']}: {self.logs(service)}"
            assert time.monotonic() < deadline, f"{service} not healthy after {timeout} s: {health} {self.logs(service)}"
            time.sleep(1)

    def logs(self, service: str) -> str:
        return self("logs", "--no-color", service, check=False).stdout[-4000:]


def sent_after(tg, before: int, expect, timeout: float, what: str):
    """The first message the bot sent to the admin after the first `before` that `expect` accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [s for s in list(tg.sent)[before:] if s.chat_id == ADMIN and expect(s)]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; sent: {[s.text[:60] for s in list(tg.sent)[before:]]}")


def ask(tg, text: str, expect, timeout: float = 60, what: str = ""):
    """Send a command as the admin; its reply, the first new message that `expect` accepts."""
    before = len(tg.sent)
    tg.message(ADMIN, text)
    return sent_after(tg, before, expect, timeout, what or f"the reply to {text}")


def test_compose_runs_the_bot_on_postgres_stops_cleanly_and_keeps_its_state(tmp_path):
    from core.data.candles import load_candle_csv
    from tests.fakes.telegram_server import FakeTelegram
    from tests.fakes.upbit_server import FakeUpbit

    if not port_free(PG_PORT):
        pytest.fail(f"127.0.0.1:{PG_PORT} is taken; choose a free port with AUTOTRADER_DOCKER_PG_PORT")
    class SlowUpbit(FakeUpbit):
        """Upbit answering candle requests three seconds late while `slow` is set (a cycle in progress)."""

        def __init__(self, *args):
            super().__init__(*args)
            self.slow, self.slowed = threading.Event(), threading.Event()

        def candles(self, *args):
            if self.slow.is_set():
                self.slowed.set()
                time.sleep(3)
            return super().candles(*args)

    btc = load_candle_csv(ROOT / "data" / "upbit-1h" / "KRW-BTC_1h.csv")
    started = time.monotonic()
    with SlowUpbit({"KRW-BTC": btc}) as upbit, FakeTelegram() as tg:
        project = Project(tmp_path, {
            "POSTGRES_PASSWORD": secrets.token_hex(12), "AUTOTRADER_IMAGE": IMAGE, "POSTGRES_IMAGE": DB_IMAGE,
            "TEST_PG_PORT": str(PG_PORT), "AUTOTRADER_MODE": "paper", "MARKETS": "KRW-BTC", "CYCLE_SECONDS": "1",
            "UPBIT_API_URL": upbit.url, "UPBIT_WS_URL": "off", "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url, "TELEGRAM_ADMIN_IDS": str(ADMIN), "BOT_LANGUAGE": "en",
            "DISPLAY_TIMEZONE": "UTC", "DAILY_SUMMARY_UTC": "off"})
        try:
            project("up", "-d", "--no-build")
            project.wait_healthy("db", 120)
            project.wait_healthy("bot")
            bot = project.container("bot")
            deadline = time.monotonic() + 60
            while "last cycle" not in (check := sh(DOCKER, "exec", bot, "autotrader", "health", check=False)).stdout:
                assert time.monotonic() < deadline, (check.stdout, check.stderr, project.logs("bot"))
                time.sleep(1)
            assert check.returncode == 0 and check.stdout.startswith("healthy: last cycle")
            mounts = {m["Destination"]: m for m in json.loads(sh(DOCKER, "inspect", bot).stdout)[0]["Mounts"]}
            assert mounts["/var/lib/autotrader"]["Type"] == "volume"
            sh(DOCKER, "exec", bot, "sh", "-c", 'touch "$MODEL_STORE/.written" "$DATA_DIR/.written"')

            ask(tg, "/start", lambda s: "Registered: you are an admin" in s.text)
            question = ask(tg, "/buy KRW-BTC 50000", lambda s: "Buy KRW-BTC for" in s.text)
            yes = json.loads(question.params["reply_markup"])["inline_keyboard"][0][0]["callback_data"]
            before = len(tg.sent)
            tg.press(ADMIN, yes, question)
            sent_after(tg, before, lambda s: "KRW-BTC: bought" in s.text, 60, "the purchase")
            ask(tg, "/threshold buy 0.4", lambda s: "buy_threshold set to 0.40 (was 0.55)" in s.text)

            # SIGTERM while a cycle waits on a slow exchange: that cycle is finished and stored, then exit 0
            db = project.container("db")
            snapshots = ["psql", "-U", "autotrader", "-d", "autotrader", "-At", "-c"]
            upbit.slow.set()
            assert upbit.slowed.wait(20), "no cycle asked for candles"
            during = int(sh(DOCKER, "exec", db, *snapshots, "select count(*) from equity_snapshots").stdout)
            stop = sh(DOCKER, "stop", "-t", "120", bot, timeout=150)
            upbit.slow.clear()
            state = json.loads(sh(DOCKER, "inspect", bot).stdout)[0]["State"]
            log = sh(DOCKER, "logs", bot).stdout + sh(DOCKER, "logs", bot).stderr
            assert stop.returncode == 0 and state["ExitCode"] == 0, log[-3000:]
            assert "Traceback" not in log and tg.token.split(":")[1] not in log
            after = int(sh(DOCKER, "exec", db, *snapshots, "select count(*) from equity_snapshots").stdout)
            assert after == during + 1, (during, after)  # the cycle in progress, and no other
            order = sh(DOCKER, "exec", db, *snapshots, "select (select max(created_at) from outbox where name = "
                       "'stopped') >= (select max(at) from equity_snapshots)").stdout.strip()
            assert order == "t"  # "stopped" is announced after the last cycle was stored

            project("down", "-t", "60")  # both containers removed; the named volumes stay
            project("up", "-d", "--no-build")
            assert project.container("bot") != bot
            project.wait_healthy("bot")
            ask(tg, "/positions", lambda s: s.text.startswith("KRW-BTC: "), 90, "the position after recreation")
            ask(tg, "/settings", lambda s: "buy_threshold = 0.40" in s.text, 60, "the threshold after recreation")
            kept = sh(DOCKER, "exec", project.container("bot"), "sh", "-c", 'ls -a "$MODEL_STORE" "$DATA_DIR"')
            assert kept.stdout.count(".written") == 2
        finally:
            project("down", "-v", "-t", "60", "--remove-orphans", check=False)
    assert not [v for v in sh(DOCKER, "volume", "ls", "-q").stdout.split() if v.startswith(project.name)]
    print(f"compose test: {time.monotonic() - started:.1f} s")
