"""edXML messages record the xmldsig check of a package and keep status packages about unknown documents.

``edxml_messages.signature_result`` (valid / invalid / unsigned) and ``signature`` (signer, certificate
subject, issuer, message) for every incoming package; ``unmatched`` and ``details`` for a status package
whose document this agency does not have (kept and listed instead of refused).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("edxml_messages") as batch_op:
        batch_op.add_column(sa.Column("signature_result", sa.String(10), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("signature", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("unmatched", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("edxml_messages") as batch_op:
        batch_op.drop_column("details")
        batch_op.drop_column("unmatched")
        batch_op.drop_column("signature")
        batch_op.drop_column("signature_result")
