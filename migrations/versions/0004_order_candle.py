"""orders remember the candle whose decision they carry out: after a crash that candle is not judged again

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("candle_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_orders_state", "orders", ["state"])


def downgrade() -> None:
    op.drop_index("ix_orders_state", table_name="orders")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("candle_at")
