"""Units administered in the app (#18): national agency code, closing and merging (``units.status``,
``merged_into_id``; documents keep ``former_agency_id``), positions with their rank, and delegations of
authority (ủy quyền) recorded on directions (``on_behalf_of``) and approval steps (``decided_by``).

Revision ID: 0028
Revises: 0033
Create Date: 2026-12-07 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("units") as batch_op:
        batch_op.add_column(sa.Column("agency_code", sa.String(length=40), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("status", sa.String(length=10), nullable=False, server_default="active"))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_units_merged_into_id_units", "units", ["merged_into_id"], ["id"])
    with op.batch_alter_table("documents") as batch_op:
        batch_op.add_column(sa.Column("former_agency_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_documents_former_agency_id_units", "units", ["former_agency_id"], ["id"])
    with op.batch_alter_table("document_directions") as batch_op:
        batch_op.add_column(sa.Column("on_behalf_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_document_directions_on_behalf_of_users", "users", ["on_behalf_of"], ["id"])
    with op.batch_alter_table("approval_steps") as batch_op:
        batch_op.add_column(sa.Column("decided_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_approval_steps_decided_by_users", "users", ["decided_by"], ["id"])
    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_positions_name"),
    )
    op.create_table(
        "delegations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_user_id", sa.Integer(), nullable=False),
        sa.Column("to_user_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["from_user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["to_user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["revoked_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delegations_from_user_id", "delegations", ["from_user_id"])
    op.create_index("ix_delegations_to_user_id", "delegations", ["to_user_id"])


def downgrade() -> None:
    op.drop_index("ix_delegations_to_user_id", table_name="delegations")
    op.drop_index("ix_delegations_from_user_id", table_name="delegations")
    op.drop_table("delegations")
    op.drop_table("positions")
    with op.batch_alter_table("approval_steps") as batch_op:
        batch_op.drop_constraint("fk_approval_steps_decided_by_users", type_="foreignkey")
        batch_op.drop_column("decided_by")
    with op.batch_alter_table("document_directions") as batch_op:
        batch_op.drop_constraint("fk_document_directions_on_behalf_of_users", type_="foreignkey")
        batch_op.drop_column("on_behalf_of")
    with op.batch_alter_table("documents") as batch_op:
        batch_op.drop_constraint("fk_documents_former_agency_id_units", type_="foreignkey")
        batch_op.drop_column("former_agency_id")
    with op.batch_alter_table("units") as batch_op:
        batch_op.drop_constraint("fk_units_merged_into_id_units", type_="foreignkey")
        for column in ("merged_into_id", "closed_at", "status", "agency_code"):
            batch_op.drop_column(column)
