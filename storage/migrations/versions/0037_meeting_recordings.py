"""Meeting recordings (#19): one row per recorded track (a WebM file in the blob store), placed on its recording
session's time line.

Revision ID: 0037
Revises: 0035
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0037'
down_revision: str | None = '0036'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=40), nullable=False),
        sa.Column("participant", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("codec", sa.String(length=20), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offset_ms", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], name="fk_meeting_recordings_meeting_id_meetings",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_recordings"),
    )
    op.create_index("ix_meeting_recordings_meeting_id", "meeting_recordings", ["meeting_id"])


def downgrade() -> None:
    op.drop_index("ix_meeting_recordings_meeting_id", table_name="meeting_recordings")
    op.drop_table("meeting_recordings")
