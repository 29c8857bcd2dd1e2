"""record the engine's decision beside each signal

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Users ask "why did it not buy?": the decision and its reason are kept with the signal they judged.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("signals") as batch_op:
        batch_op.add_column(sa.Column("decision_action", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("decision_approved", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("decision_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch_op:
        batch_op.drop_column("decision_reason")
        batch_op.drop_column("decision_approved")
        batch_op.drop_column("decision_action")
