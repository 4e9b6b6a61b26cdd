"""Written consultation (#20): the designated signer's PAdES-signed result report, and when each member who
had not answered was reminded before the deadline (once).

Revision ID: 0035
Revises: 0027
Create Date: 2026-12-07 20:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0035'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consultations") as batch_op:
        batch_op.add_column(sa.Column("signed_blob_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signed_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("signed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("signed_certificate", sa.String(length=500), nullable=False,
                                      server_default=""))
        batch_op.create_foreign_key("fk_consultations_signed_by_users", "users", ["signed_by"], ["id"])
    with op.batch_alter_table("consultation_members") as batch_op:
        batch_op.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consultation_members") as batch_op:
        batch_op.drop_column("reminded_at")
    with op.batch_alter_table("consultations") as batch_op:
        batch_op.drop_constraint("fk_consultations_signed_by_users", type_="foreignkey")
        batch_op.drop_column("signed_certificate")
        batch_op.drop_column("signed_by")
        batch_op.drop_column("signed_at")
        batch_op.drop_column("signed_size")
        batch_op.drop_column("signed_blob_key")
