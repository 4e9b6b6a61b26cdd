"""Bút phê (#22): the leader's handwriting on the document's pages, kept with the direction.

Revision ID: 0034
Revises: 0026
Create Date: 2026-12-07 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0034'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document_directions") as batch_op:
        batch_op.add_column(sa.Column("ink", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document_directions") as batch_op:
        batch_op.drop_column("ink")
