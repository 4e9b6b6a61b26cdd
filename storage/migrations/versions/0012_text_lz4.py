"""Extracted texts and search vectors compressed with LZ4 rather than pglz (PostgreSQL 14+ built
with LZ4, as Debian's and the official images are): storing an attachment's text (~100 kB for 40
pages) cost the backend ~0.7 ms of pglz, LZ4 a tenth of that for a similar size (issue #4,
bench/ingest.py). Values already stored keep their compression until they are rewritten.
Nothing changes on SQLite, or where the server has no LZ4.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 20:00:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("document_attachments", "text"), ("documents", "search_vector"))


def _has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.execute(text(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar())


def upgrade() -> None:
    if _has_lz4():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _has_lz4():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION DEFAULT")
