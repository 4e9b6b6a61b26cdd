"""The chair's tie rule of a poll (``meeting_polls.tie_rule``): "" (a tie does not pass) or "chair" (the side
the chair voted for wins; named yes/no polls only, ``meetings.voting_rules.TieRule``).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_polls") as batch_op:
        batch_op.add_column(sa.Column("tie_rule", sa.String(length=20), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("meeting_polls") as batch_op:
        batch_op.drop_column("tie_rule")
