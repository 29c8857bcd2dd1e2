"""Korean and English: complete, compiled catalogs that match the code; every command and every alert
said in Korean without an English sentence left in it; times in Korea time; a chat's language kept
across restarts; and no input in either language that makes a command raise."""
from __future__ import annotations

import gettext
import random
import re
import string
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.messages import RENDERERS, event_text
from bot.views import render
from core.display import krw, set_display_zone, signed_krw, when
from core.i18n import DOMAIN, LANGUAGES, LOCALE_DIR, language
from core.service.commands import CommandService
from core.service.registry import CONSOLE, REGISTRY, Caller, Source
from core.service.replies import LogsView
from core.storage.outbox import Alert
from core.storage.users import chat_language, register, subscribers
from core.trading.events import KINDS
from tests.conftest import ROOT
from tests.fakes.feeds import BUY, ScriptedFeed, hour
from tests.test_agent import chat, make_agent

PO = {code: LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po" for code in LANGUAGES}
FIELD = string.Formatter()


def catalog(code: str):
    with PO[code].open("rb") as f:
        return read_po(f)


def forms(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def fields(text: str) -> set[str]:
    """The named placeholders of a str.format template, with their format specs."""
    return {f"{name}:{spec}" for _, name, spec, _ in FIELD.parse(text) if name is not None}


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_message_has_a_translation_with_the_same_placeholders(code):
    messages = [m for m in catalog(code) if m.id]
    assert len(messages) > 300
    for m in messages:
        ids, strings = forms(m.id), forms(m.string)
        assert all(s.strip() for s in strings), f"{code}: no translation for {ids[0]!r}"
        for s in strings:
            assert fields(s) == fields(ids[0]), f"{code}: placeholders of {ids[0]!r} differ in {s!r}"
        assert "fuzzy" not in m.flags, f"{code}: {ids[0]!r} is marked fuzzy"


def test_the_catalogs_hold_every_text_the_code_marks_and_nothing_else():
    """What `tools/catalogs.py` would extract today equals the catalogs' ids: a text marked in the code
    and missing from them (or left over there) fails here."""
    method_map = [("core/**.py", "python"), ("bot/**.py", "python")]
    keywords = {"_": None, "N_": None, "ngettext": (1, 2)}
    marked = set()
    for _, _, message, _, _ in extract_from_dir(ROOT, method_map, keywords=keywords):
        marked.add(forms(message)[0])
    for code in LANGUAGES:
        assert {forms(m.id)[0] for m in catalog(code) if m.id} == marked, f"{code}: run python tools/catalogs.py"


@pytest.mark.parametrize("code", LANGUAGES)
def test_the_compiled_catalogs_ship_and_equal_their_sources(code):
    mo = LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with mo.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    for m in catalog(code):
        if not m.id:
            continue
        if isinstance(m.id, tuple):
            assert compiled.ngettext(m.id[0], m.id[1], 1) == m.string[0]
        else:
            assert compiled.gettext(m.id) == m.string, m.id
    packaged = (ROOT / "pyproject.toml").read_text()
    assert '"locale/*/LC_MESSAGES/*.mo"' in packaged


# A sentence left in English: three English words in a row once market names, commands, parameter
# names, URLs and ids (anything with _ / - . : | < or a digit in it) are taken out.
TOKEN = re.compile(r"\S*[_/\-.:|<>\[\]=@\d]\S*")
ENGLISH_RUN = re.compile(r"[A-Za-z']+(?:[ ,()]+[A-Za-z']+){2,}")
ALLOWED = {"autotrader", "Python", "KST", "UTC", "AUC", "ms", "h", "x", "n", "ko", "en", "English", "on", "off",
           "silent", "group", "add", "remove", "buy", "sell", "emergency", "threshold", "expected_return",
           *KINDS}  # words users type as arguments (alert kinds among them)


def english_sentences(text: str) -> list[str]:
    stripped = TOKEN.sub("§", text)
    runs = []
    for run in ENGLISH_RUN.findall(stripped):
        words = re.findall(r"[A-Za-z']+", run)
        if len([w for w in words if w not in ALLOWED]) >= 3:
            runs.append(run)
    return runs


def test_the_detector_finds_english_left_in_korean():
    assert english_sentences("KRW-BTC 보유 포지션이 없습니다; /sell KRW-BTC 사용법: /sell <마켓>") == []
    assert english_sentences("규칙: expected_return: stop_loss = 5.0% (모델의 워크포워드 기본값)") == []
    assert english_sentences("오류: no open position in KRW-BTC") != []


@pytest.fixture
def korean():
    with language("ko"):
        set_display_zone("Asia/Seoul")
        try:
            yield
        finally:
            set_display_zone("UTC")


ADMIN = Caller(user_id=7, source=Source.TELEGRAM, role="admin", chat_id=7)
VIEWER = Caller(user_id=8, source=Source.TELEGRAM, role="viewer", chat_id=8)

# Each command with good and with bad arguments; every declared command must be here.
LINES = {
    "help": ["/help", "/help me"], "status": ["/status"], "positions": ["/positions"], "balance": ["/balance"],
    "profit": ["/profit", "/profit 7", "/profit 0"], "signals": ["/signals"], "daily": ["/daily", "/daily 3"],
    "model": ["/model"], "chart": ["/chart 비트", "/chart"], "equity": ["/equity"], "settings": ["/settings"],
    "health": ["/health"], "version": ["/version"], "pause": ["/pause", "/pause", "/resume"],
    "resume": ["/resume"], "threshold": ["/threshold buy 0.6", "/threshold buy 2", "/threshold 매수 0.5"],
    "set": ["/set stop_loss 0.04", "/set stop_loss 1.5", "/set stop_loss 가나", "/set 모름 1", "/set max_positions 0",
            "/set"],
    "sell": ["/sell KRW-BTC", "/sell KRW-XRP", "/sell 비트"], "buy": ["/buy KRW-ETH 10000", "/buy KRW-ETH 100",
                                                                    "/buy KRW-BTC", "/buy KRW-ETH 만원"],
    "sellall": ["/sellall", "/sellall"], "markets": ["/markets", "/markets add KRW-XRP", "/markets add KRW-XRP",
                                                     "/markets remove KRW-XRP", "/markets remove", "/markets 추가"],
    "start": ["/start"], "alerts": ["/alerts", "/alerts fill silent", "/alerts 모두 on", "/alerts group on",
                                    "/alerts fill"],
    "trades": ["/trades", "/trades 3", "/trades 0"], "performance": ["/performance"],
    "weekly": ["/weekly", "/weekly 200"], "monthly": ["/monthly 2"], "logs": ["/logs 3", "/logs 5000"],
    "language": ["/language", "/language 불어"],
    "retrain": ["/retrain"], "promote": ["/promote 2", "/promote 가", "/promote"], "rollback": ["/rollback"],
}
EXTRA = ["/없는명령", "안녕하세요", "/"]


def test_every_command_answers_in_korean_without_an_english_sentence(db, korean):
    assert set(LINES) == set(REGISTRY), "a command without Korean checks"
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(1, "KRW-ETH", BUY, 5_000_000)
    feed.at(2, "KRW-BTC", BUY, 101_000_000).at(2, "KRW-ETH", BUY, 5_100_000)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    service = CommandService(agent)
    checked = 0
    for lines in [*LINES.values(), EXTRA]:
        for line in lines:
            for caller in (ADMIN, VIEWER):
                for confirmed in (False, True):
                    with language("ko"):
                        reply = service.handle(line, replace(caller, language="ko"), confirmed)
                        shown = render(reply)
                    assert shown.strip(), line
                    if not isinstance(reply, LogsView):  # the log lines /logs shows stay English
                        assert english_sentences(shown) == [], (line, shown)
                    checked += 1
    assert checked > 250


def test_korean_replies_show_korea_time_and_won(db, korean):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))  # 01:00 UTC
    console, _ = chat(agent)
    console.answer("/language ko")
    positions = console.answer("/positions")
    assert "10:00 KST" in positions and "평균 100,000,000원" in positions
    assert when(datetime(2025, 1, 1, 15, 30, tzinfo=timezone.utc)) == "2025-01-02 00:30 KST"
    assert krw(1234567.4) == "1,234,567원" and signed_krw(-1500) == "-1,500원"
    with language("en"):
        assert krw(1234567) == "KRW 1,234,567" and signed_krw(2500) == "KRW +2,500"


SAMPLE_FILL = {"side": "bid", "volume": 0.0025, "price_krw": 100_000_000, "funds_krw": 250_000, "fee_krw": 125}
SAMPLE_SELL = {**SAMPLE_FILL, "side": "ask", "return_ratio": 0.012, "pnl_krw": 3000}
SAMPLE_REASON = {"reason": "stop-loss: -5.10% <= -5.00%",
                 "reason_data": {"code": "stop_loss", "params": {"change": -0.051, "limit": 0.05}}}
SAMPLES = {
    "signal": [{"action": "BUY", "buy": 0.6, "hold": 0.3, "sell": 0.1, "confidence": 0.3, "traded": True},
               {"action": "SELL", "buy": 0.1, "hold": 0.3, "sell": 0.6, "confidence": 0.3, "traded": False,
                "reason": "model SELL but nothing held", "reason_data": {"code": "sell_nothing_held", "params": {}}}],
    "bought": [SAMPLE_FILL], "sold": [SAMPLE_SELL],
    "emergency_sold": [{**SAMPLE_SELL, "reason": "x", "reason_data": {"code": "emergency",
                                                                      "params": {"score": 0.8, "threshold": 0.7}}}],
    "exit_sold": [{**SAMPLE_SELL, **SAMPLE_REASON, "exit": "stop_loss"}],
    "warming_up": [{"candles_needed": 5}, {"candles_needed": 1}, {"candles_needed": None}],
    "emergency_failed": [{"error": "HTTP 500"}], "order_failed": [{"action": "BUY", "error": "HTTP 500"}],
    "skipped": [{"error": "HTTP 500"}], "books_not_sane": [{"problem": "-5 KRW"}],
    "order_never_arrived": [{"identifier": "at-1", "side": "bid"}],
    "order_cancelled_empty": [{"identifier": "at-1", "side": "ask"}],
    "order_settled": [{"identifier": "at-1", **SAMPLE_FILL}],
    "cash_funding": [{"account_krw": 1_000_000}],
    "cash_moved": [{"account_krw": 1_100_000, "books_krw": 1_000_000, "flow": "deposit", "amount_krw": 100_000},
                   {"account_krw": 900_000, "books_krw": 1_000_000, "flow": "withdrawal", "amount_krw": 100_000}],
    "coin_adopted": [{"more": True, "volume": 0.1, "price_krw": 5_000_000, "position_volume": 0.2},
                     {"more": False, "volume": 0.1, "price_krw": 5_000_000, "position_volume": 0.0}],
    "settings_changed": [{"by": "console", "changes": {"stop_loss": 0.04}}, {"by": "console", "changes": {}}],
    "markets_changed": [{"by": "console", "action": "add", "markets": ["KRW-BTC", "KRW-XRP"]},  # as the agent
                        {"by": "console", "action": "remove", "markets": ["KRW-BTC"]}],  # stores it: market apart
    "started": [{"mode": "paper", "markets": ["KRW-BTC"], "first_cycle_at": "2025-01-01T00:00:05+00:00"},
                {"mode": "live", "markets": ["KRW-BTC"], "every_seconds": 60},
                {"mode": "paper (replay)", "markets": ["KRW-BTC"], "replay_speed": 0}],
    "stopped": [{}],
    "live_warning": [{"url": "https://api.upbit.com", "max_order_krw": 100_000, "max_daily_krw": 500_000}],
    "market_data_down": [{"error": "HTTP 503"}], "market_data_back": [{}],
    "price_stream_down": [{"error": "ConnectionClosed", "poll_seconds": 30.0}], "price_stream_back": [{}],
    "account_stream_down": [{"error": "InvalidStatus"}], "account_stream_back": [{}],
    "job_failed": [{"job": "cycle"}, {"job": "price-shock guard"}],
    "replay_started": [{"markets": ["KRW-BTC"], "ticks": 10, "first": "2025-01-01T00:00:00+00:00"}],
    "replay_finished": [{"total_return": 0.01, "trades": 3, "max_drawdown": -0.05}],
    "daily_summary": [{"days": [{"day": "2025-01-01", "equity_krw": 1_010_000, "change_krw": 10_000,
                                 "change_ratio": 0.01, "trades": 2, "realised_krw": 8_000}],
                       "cash_krw": 760_000, "positions_krw": 250_000, "equity_krw": 1_010_000,
                       "principal_krw": 1_000_000, "fees_krw": 500,
                       "positions": [{"market": "KRW-BTC", "volume": 0.0025, "avg_price_krw": 100_000_000,
                                      "price_krw": 101_000_000, "pnl_ratio": 0.009, "pnl_krw": 2_250}]},
                      {"days": [], "cash_krw": 1_000_000, "positions_krw": 0, "equity_krw": 1_000_000,
                       "principal_krw": 1_000_000, "fees_krw": 0, "positions": []}],
    **{name: [{"version": 3, "model_id": "hybrid-global-20251201", "serving": 2, "seconds": 40.0,
               "period": ["2025-11-01T00:00:00+00:00", "2025-12-01T00:00:00+00:00"], "in_sample": in_sample,
               "challenger": {"score": 0.4, "total_return": 0.012, "sharpe": 1.1, "trades": 6},
               "current": {"score": -0.2, "total_return": -0.004, "sharpe": None, "trades": 2}}
              for in_sample in (False, True)] for name in ("model_promoted", "challenger_rejected")},
    "retrain_failed": [{"version": 4, "error": "SIGKILL", "serving": 2}],
    "model_switched": [{"version": 2, "model_id": "hybrid-global-20251201", "by": "telegram user 7", "previous": 3,
                        "action": "rollback"}],
    "model_unusable": [{"note": "v3: OSError"}],
}


def alert(name: str, params: dict) -> Alert:
    return Alert(id=1, kind="system", name=name, params=params, market="KRW-BTC", text=None, priority=1, chat_id=None,
                 attempts=0, created_at=datetime(2025, 1, 1, tzinfo=timezone.utc))


def test_an_alert_whose_parameters_do_not_fit_is_shown_as_data_not_raised():
    shown = event_text(alert("bought", {"side": "bid"}))  # a row missing what its words need
    assert shown.startswith("bought: side=bid")


def test_every_alert_is_said_in_korean_and_in_english(korean):
    assert set(SAMPLES) == set(RENDERERS), "an event without a Korean check"
    for name, cases in SAMPLES.items():
        for params in cases:
            with language("ko"):
                shown = event_text(alert(name, params))
            assert shown and not shown.startswith(f"{name}: ") and english_sentences(shown) == [], (name, shown)
            with language("en"):
                assert event_text(alert(name, params)), name
    with language("ko"):
        assert "손절: -5.10% <= -5.00%" in event_text(alert("exit_sold", SAMPLES["exit_sold"][0]))
        assert "2025-01-01 09:00 KST" in event_text(alert("replay_started", SAMPLES["replay_started"][0]))


def test_a_chats_language_is_kept_across_a_restart_and_used_for_its_alerts(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000)
    agent = make_agent(db, feed)
    service = CommandService(agent)
    register(db, 7, 7, "admin", hour(0))
    register(db, 8, 8, "viewer", hour(0))
    assert "한국어" in service.handle("/language ko", ADMIN).text
    assert service.handle("/language en", VIEWER).text == "From now on this chat reads the bot in English."
    restarted = CommandService(make_agent(db, feed))  # a new process on the same database
    assert chat_language(db, 7) == "ko" and chat_language(db, 8) == "en"
    again = replace(ADMIN, language=chat_language(db, 7))
    assert restarted.handle("/status", again) is not None
    with language(again.language):
        assert render(restarted.handle("/status", again)).startswith("모드:")
    by_chat = {s.chat_id: s.language for s in subscribers(db, {7: "admin", 8: "viewer"})}
    assert by_chat == {7: "ko", 8: "en"}
    with db.connect() as conn:
        rows = conn.exec_driver_sql("select command, detail from audit_log where command = 'language'").all()
    assert [tuple(r) for r in rows] == [("language", "chat 7: ko"), ("language", "chat 8: en")]
    # the console is a chat too: its choice is kept the same way
    console, out = chat(agent)
    console.answer("/language ko")
    assert console.answer("/balance").startswith("현금")
    assert chat(make_agent(db, feed))[0].answer("/balance").startswith("현금")


@pytest.mark.parametrize("code", LANGUAGES)
def test_no_input_makes_a_command_raise_in_either_language(db, code):
    """Random text, unicode, very long arguments and every command with wrong arguments, answered in
    the chat's language with one line, never an exception."""
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000)
    agent = make_agent(db, feed)
    service = CommandService(agent)  # right after a (re)start: no cycle has priced anything yet
    rng = random.Random(11)
    pieces = ["", " ", "0", "-1", "1e309", "nan", "KRW-BTC", "krw-eth", "BTC", "on", "off", "ko", "en", "🚀",
              "비트코인", "매수", "한국어", "x" * 5000, "\x00", "\u202e", "%s", "%(x)s", "{}", "{0}", "{name}", "/", "--",
              "0.5", "99999999999999999999", "원", "50,000원"]
    lines = ["/sell KRW-BTC", "/buy KRW-BTC", "/buy KRW-BTC 50000", "/chart KRW-BTC", "/equity"]
    for name in REGISTRY:
        lines += [f"/{name}"] + [" ".join([f"/{name}"] + rng.choices(pieces, k=rng.randint(1, 4))) for _ in range(10)]
    lines += ["".join(rng.choice(pieces + ["/", " "]) for _ in range(rng.randint(1, 6))) for _ in range(200)]
    for line in lines:
        for caller in (ADMIN, VIEWER, CONSOLE):
            caller = replace(caller, language=code)
            for confirmed in (False, True):
                reply = service.handle(line, caller, confirmed)
                with language(code):
                    shown = render(reply)
                assert shown and "failed unexpectedly" not in shown and "예기치 않게" not in shown, (line, shown)
    assert chat_language(db, 7) in (None, *LANGUAGES)


def test_settings_name_the_language_and_zone_and_refuse_others():
    from core.service.settings import SettingsError, load_settings

    defaults = load_settings({}, env_file=None)
    assert defaults.language == "ko" and defaults.display_timezone == "Asia/Seoul"
    chosen = load_settings({"BOT_LANGUAGE": "EN", "DISPLAY_TIMEZONE": "Europe/Berlin"}, env_file=None)
    assert chosen.language == "en" and chosen.display_timezone == "Europe/Berlin"
    with pytest.raises(SettingsError, match="BOT_LANGUAGE"):
        load_settings({"BOT_LANGUAGE": "fr"}, env_file=None)
    with pytest.raises(SettingsError, match="DISPLAY_TIMEZONE"):
        load_settings({"DISPLAY_TIMEZONE": "Mars/Olympus"}, env_file=None)


def test_the_korean_readme_exists_and_the_readmes_link_to_each_other():
    english, korean = (ROOT / "README.md").read_text(), (ROOT / "README.ko.md").read_text()
    assert "README.ko.md" in english and "README.md" in korean
    for name in REGISTRY:
        assert f"/{name}" in english and f"/{name}" in korean, name
    assert Path(ROOT / "docs" / "translating.md").is_file()
