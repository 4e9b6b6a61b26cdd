"""Rank order of units and people (``units.rank``, ``users.rank``), for ``eoffice org import``.

Lower first: the Chủ tịch before the Phó Chủ tịch, the provincial People's Committee office before the
departments. 1000 (the default) for whoever has no rank: after every ranked row.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("units", "users"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("rank", sa.Integer(), nullable=False, server_default="1000"))


def downgrade() -> None:
    for table in ("users", "units"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("rank")
