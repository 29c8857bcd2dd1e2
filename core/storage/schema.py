"""What is stored? The SQL tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

KRW amounts that reach an exchange are NUMERIC; times are timezone-aware UTC.
"""
from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

KRW = Numeric(20, 4)
VOLUME = Numeric(30, 12)

settings = Table(
    "settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),  # migration 0003
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

signals = Table(
    "signals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("market", String(32), nullable=False, index=True),
    Column("candle_at", DateTime(timezone=True), nullable=False),
    Column("buy_probability", Float, nullable=False),
    Column("sell_probability", Float, nullable=False),
    Column("hold_probability", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("emergency_score", Float, nullable=False),
    Column("expected_return", Float),  # the calibrated expected net return, None from old models (migration 0007)
    Column("action", String(8), nullable=False),
    Column("model_id", String(128)),
    Column("error", Text),
    Column("decision_action", String(8)),  # what the engine did with it (migration 0002)
    Column("decision_approved", Boolean),
    Column("decision_reason", Text),
    Column("decision_reason_data", JSON),  # the reason's code and parameters (migration 0006)
    UniqueConstraint("market", "candle_at", name="uq_signal_market_candle"),
)

orders = Table(
    "orders", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("identifier", String(64), nullable=False, unique=True),
    Column("market", String(32), nullable=False, index=True),
    Column("side", String(4), nullable=False),  # bid | ask
    Column("ord_type", String(8), nullable=False),  # price | market | limit
    Column("amount_krw", KRW),
    Column("volume", VOLUME),
    Column("state", String(16), nullable=False, index=True),  # pending | done | cancel | failed | unknown
    Column("reason", Text),
    Column("kind", String(16), nullable=False),  # signal | stop_loss | take_profit | trailing_stop | emergency | manual | external
    Column("exchange_uuid", String(64)),
    Column("candle_at", DateTime(timezone=True)),  # the candle whose decision this carries out (0004)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

fills = Table(
    "fills", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_identifier", String(64), ForeignKey("orders.identifier"), nullable=False, index=True),
    Column("market", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("price_krw", KRW, nullable=False),
    Column("volume", VOLUME, nullable=False),
    Column("funds_krw", KRW, nullable=False),
    Column("fee_krw", KRW, nullable=False),
    Column("filled_at", DateTime(timezone=True), nullable=False),
)

positions = Table(
    "positions", metadata,
    Column("market", String(32), primary_key=True),
    Column("volume", VOLUME, nullable=False),
    Column("avg_price_krw", KRW, nullable=False),
    Column("cost_krw", KRW, nullable=False),  # paid including the buy fee
    Column("peak_price_krw", KRW, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("renewed_at", DateTime(timezone=True)),  # the last entry signal while held (migration 0007)
)

equity_snapshots = Table(
    "equity_snapshots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("cash_krw", KRW, nullable=False),
    Column("equity_krw", KRW, nullable=False),
    Column("open_positions", Integer, nullable=False),
)

users = Table(
    "users", metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),  # admin | viewer
    Column("alerts", JSON, nullable=False, default=dict),  # kind -> on | off | silent
    Column("created_at", DateTime(timezone=True), nullable=False),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("priority", Integer, nullable=False, default=0),  # emergency alerts first
    Column("chat_id", BigInteger),  # None: every subscribed chat
    Column("text", Text),  # rows before migration 0006 only: their English text
    Column("name", String(64)),  # the event (core.trading.events), rendered by bot/messages.py when sent
    Column("params", JSON),
    Column("market", String(32)),
    Column("status", String(16), nullable=False, default="pending", index=True),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
)

cash_flows = Table(
    "cash_flows", metadata,  # migration 0005: KRW in or out other than by a fill
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("amount_krw", KRW, nullable=False),  # positive: money in
    Column("kind", String(16), nullable=False),  # funding | deposit | withdrawal
    Column("reason", Text, nullable=False),
)

trading_days = Table(
    "trading_days", metadata,  # migration 0005: the equity each UTC day started from (daily-loss guard)
    Column("day", String(10), primary_key=True),
    Column("start_equity_krw", KRW, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", BigInteger),
    Column("source", String(16), nullable=False),  # telegram | console | system
    Column("command", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("succeeded", Boolean, nullable=False),
)

chat_languages = Table(  # the language each chat chose with /language (migration 0008); the console is chat 0
    "chat_languages", metadata,
    Column("chat_id", BigInteger, primary_key=True, autoincrement=False),
    Column("language", String(8), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

model_versions = Table(  # the model registry (migration 0009): version 1 is the model the bot first served
    "model_versions", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("model_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False, index=True),  # serving | challenger | rejected | retired | failed
    Column("path", Text),  # the artifacts' directory; NULL for a training that produced none (failed)
    Column("data_first", DateTime(timezone=True)),
    Column("data_last", DateTime(timezone=True)),
    Column("markets", JSON, nullable=False),
    Column("parameters", JSON, nullable=False),  # label, training configuration, split plan
    Column("validation", JSON, nullable=False),  # validation metrics of the training run
    Column("recent", JSON, nullable=False),  # figures on the recent purged period, beside the serving model's
    Column("promoted_at", DateTime(timezone=True)),
    Column("promoted_by", String(64)),
    Column("reason", Text, nullable=False),  # why it has its status
)
