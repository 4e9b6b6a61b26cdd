"""Written consultation of a committee's members (phiếu lấy ý kiến thành viên, issue 20): the consultation
with its questions and rule, the members consulted, the draft documents and submission, each answer.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=True),
        sa.Column("office_unit_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("close_reason", sa.String(length=20), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["signer_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["office_unit_id"], ["units.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consultations_deadline", "consultations", ["deadline"])
    op.create_index("ix_consultations_state", "consultations", ["state"])
    op.create_table(
        "consultation_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consultation_id", "user_id"),
    )
    op.create_index("ix_consultation_members_consultation_id", "consultation_members", ["consultation_id"])
    op.create_index("ix_consultation_members_user_id", "consultation_members", ["user_id"])
    op.create_table(
        "consultation_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("page_sizes", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consultation_documents_consultation_id", "consultation_documents", ["consultation_id"])
    op.create_table(
        "consultation_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consultation_id", "user_id", "question"),
    )
    op.create_index("ix_consultation_answers_consultation_id", "consultation_answers", ["consultation_id"])


def downgrade() -> None:
    op.drop_index("ix_consultation_answers_consultation_id", table_name="consultation_answers")
    op.drop_table("consultation_answers")
    op.drop_index("ix_consultation_documents_consultation_id", table_name="consultation_documents")
    op.drop_table("consultation_documents")
    op.drop_index("ix_consultation_members_user_id", table_name="consultation_members")
    op.drop_index("ix_consultation_members_consultation_id", table_name="consultation_members")
    op.drop_table("consultation_members")
    op.drop_index("ix_consultations_state", table_name="consultations")
    op.drop_index("ix_consultations_deadline", table_name="consultations")
    op.drop_table("consultations")
