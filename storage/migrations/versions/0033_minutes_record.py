"""Minutes as a record under Decree 30 (#20): their number in the issuing agency's BB series (kept when
reopened) and the chair's and secretary's PAdES signatures on the approved PDF.

Revision ID: 0033
Revises: 0029
Create Date: 2026-12-07 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0033'
down_revision: str | None = '0029'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.add_column(sa.Column("minutes_register_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("minutes_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("minutes_notation", sa.String(length=80), nullable=True))
        batch_op.create_foreign_key("fk_meetings_minutes_register_id_registers", "registers",
                                    ["minutes_register_id"], ["id"])
    op.create_table(
        "meeting_minutes_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("certificate", sa.String(length=500), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "source_key", "role"),
    )
    op.create_index("ix_meeting_minutes_signatures_meeting_id", "meeting_minutes_signatures", ["meeting_id"])


def downgrade() -> None:
    op.drop_index("ix_meeting_minutes_signatures_meeting_id", table_name="meeting_minutes_signatures")
    op.drop_table("meeting_minutes_signatures")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.drop_constraint("fk_meetings_minutes_register_id_registers", type_="foreignkey")
        batch_op.drop_column("minutes_notation")
        batch_op.drop_column("minutes_number")
        batch_op.drop_column("minutes_register_id")
