"""A substitute (người dự thay) carries the invitee's access to confidential agenda items only
once the chair approved the substitution, or when the substitute works in the invitee's unit.

Existing substitutions are left unapproved: the chair approves them again (fail closed).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_participants") as batch:
        batch.add_column(sa.Column("substitute_approved", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("meeting_participants") as batch:
        batch.drop_column("substitute_approved")
