"""eCabinet (#20): the meeting's and the consultation's work dossier (hồ sơ công việc) where the signed minutes
and report are filed, files held by a dossier (a signed PDF that is no registered document), conclusions
assigned to a unit, delegations (tổ đại biểu) with a speaking time budget, and the item a registered question
is about.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0038'
down_revision: str | None = '0037'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_delegations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "name"),
    )
    op.create_index("ix_meeting_delegations_meeting_id", "meeting_delegations", ["meeting_id"])
    with op.batch_alter_table("meeting_speakers") as batch_op:
        batch_op.add_column(sa.Column("note_item_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("meeting_participants") as batch_op:
        batch_op.add_column(sa.Column("delegation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_meeting_participants_delegation_id_meeting_delegations",
                                    "meeting_delegations", ["delegation_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.add_column(sa.Column("dossier_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_meetings_dossier_id_dossiers", "dossiers", ["dossier_id"], ["id"],
                                    ondelete="SET NULL")
    with op.batch_alter_table("consultations") as batch_op:
        batch_op.add_column(sa.Column("dossier_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_consultations_dossier_id_dossiers", "dossiers", ["dossier_id"], ["id"],
                                    ondelete="SET NULL")
    with op.batch_alter_table("dossier_items") as batch_op:
        batch_op.add_column(sa.Column("blob_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("file_name", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=True))
    with op.batch_alter_table("meeting_conclusions") as batch_op:
        batch_op.add_column(sa.Column("assignee_unit_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_meeting_conclusions_assignee_unit_id_units", "units",
                                    ["assignee_unit_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("meeting_participants") as batch_op:
        batch_op.drop_constraint("fk_meeting_participants_delegation_id_meeting_delegations", type_="foreignkey")
        batch_op.drop_column("delegation_id")
    with op.batch_alter_table("meeting_speakers") as batch_op:
        batch_op.drop_column("note_item_id")
    op.drop_index("ix_meeting_delegations_meeting_id", table_name="meeting_delegations")
    op.drop_table("meeting_delegations")
    with op.batch_alter_table("meeting_conclusions") as batch_op:
        batch_op.drop_constraint("fk_meeting_conclusions_assignee_unit_id_units", type_="foreignkey")
        batch_op.drop_column("assignee_unit_id")
    with op.batch_alter_table("dossier_items") as batch_op:
        batch_op.drop_column("size")
        batch_op.drop_column("file_name")
        batch_op.drop_column("blob_key")
    with op.batch_alter_table("consultations") as batch_op:
        batch_op.drop_constraint("fk_consultations_dossier_id_dossiers", type_="foreignkey")
        batch_op.drop_column("dossier_id")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.drop_constraint("fk_meetings_dossier_id_dossiers", type_="foreignkey")
        batch_op.drop_column("dossier_id")
