"""the books remember the money that came in and out, and each trading day's starting equity

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`cash_flows`: every KRW amount that entered or left the account other than by a fill (the paper
wallet's funding, the live account's KRW adopted at the first reconciliation, a deposit or a
withdrawal found later). A restart rebuilds cash as these flows plus the fills, so it equals the
account without being adopted again. `trading_days`: the equity a UTC trading day started from,
taken from reconciled books, so a restart mid-day keeps the daily-loss guard's reference.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "cash_flows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_krw", sa.Numeric(20, 4), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "trading_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("start_equity_krw", sa.Numeric(20, 4), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trading_days")
    op.drop_table("cash_flows")
