"""Background jobs retried after an outage (#17): an ingest job (text extraction, rendition, OCR) that failed
because S3 or the database was briefly unavailable is queued again with a back-off; its attempts and the time of
its next one are kept, shown to administrators (/admin/jobs, `eoffice jobs list`) with a retry button.

Revision ID: 0031
Revises: 0034
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0031'
down_revision: str | None = '0034'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch_op:
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
