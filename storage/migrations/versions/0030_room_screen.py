"""Room screen and speaking time (#20): the meeting's default time to speak and the room screen link's nonce; a
turn's pauses; the question sent with a registration to speak (before the meeting).

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-07 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.add_column(sa.Column("speaking_time", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("screen_nonce", sa.String(length=64), nullable=True))
    with op.batch_alter_table("meeting_speakers") as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("paused_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("meeting_speakers") as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("paused_seconds")
        batch_op.drop_column("paused_at")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.drop_column("screen_nonce")
        batch_op.drop_column("speaking_time")
