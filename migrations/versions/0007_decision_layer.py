"""the expected-return decision layer: a position remembers its last entry signal (the rule holds it for
its horizon from then), and every signal row keeps the expected net return it was judged on

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch_op:
        batch_op.add_column(sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("signals") as batch_op:
        batch_op.add_column(sa.Column("expected_return", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch_op:
        batch_op.drop_column("expected_return")
    with op.batch_alter_table("positions") as batch_op:
        batch_op.drop_column("renewed_at")
