"""Search by sender (issue #4: "PostgreSQL's own full-text/trigram features"): the sender filter is a
substring match on the folded sender (``LIKE '%ubnd dong trieu%'``), which no b-tree can serve; a
trigram GIN index (pg_trgm) can. pg_trgm is a trusted extension (PostgreSQL 13+): the database's
owner may create it. Where it cannot be created the index is left out and the filter scans, as
before. Nothing changes on SQLite.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 21:05:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_documents_sender_trgm"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    savepoint = bind.begin_nested()
    try:
        bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except Exception:  # not installed on the server, or no right to create it: keep the plain scan
        savepoint.rollback()
        return
    savepoint.commit()
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON documents USING gin (sender_key gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
