"""LDAP / Active Directory (#18): the stable directory id (entryUUID, objectGUID) of units and accounts that come
from the directory, so a rename there renames here; an account with one logs in by a bind to the directory.

Revision ID: 0027
Revises: 0032
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0027'
down_revision: str | None = '0032'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("units", "users"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("directory_id", sa.String(length=64), nullable=True))
            batch_op.create_unique_constraint(f"uq_{table}_directory_id", ["directory_id"])


def downgrade() -> None:
    for table in ("users", "units"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_directory_id", type_="unique")
            batch_op.drop_column("directory_id")
