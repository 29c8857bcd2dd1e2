"""alerts are stored as events (a name and parameters) and rendered in each chat's language when sent;
decisions keep their reason's code and parameters beside its text

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Rows written before keep their English `text` and are shown as they are.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("params", sa.JSON, nullable=True))
        batch_op.add_column(sa.Column("market", sa.String(32), nullable=True))
        batch_op.alter_column("text", existing_type=sa.Text, nullable=True)
    with op.batch_alter_table("signals") as batch_op:
        batch_op.add_column(sa.Column("decision_reason_data", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch_op:
        batch_op.drop_column("decision_reason_data")
    op.execute("UPDATE outbox SET text = coalesce(text, name) WHERE text IS NULL")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.alter_column("text", existing_type=sa.Text, nullable=False)
        batch_op.drop_column("market")
        batch_op.drop_column("params")
        batch_op.drop_column("name")
