"""Renditions of attachments (#16): the PDF that LibreOffice or Tesseract made of an office file or a scan, stored
as its own blob beside the untouched original; the conversion's state is the attachment's ingest job.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document_attachments") as batch_op:
        batch_op.add_column(sa.Column("rendition_blob_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document_attachments") as batch_op:
        batch_op.drop_column("rendition_blob_key")
