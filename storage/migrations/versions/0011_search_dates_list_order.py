"""Search by date issued and lists at a million documents: the PostgreSQL search vector also holds
the year and month of the date issued (``~y:2025``, ``~m:202511``, ``eoffice.search.meta_lexemes``)
so a date range far in the past is one GIN lookup; an index on the date issued gives an open range
its other end; an index on (created_at, id) lets a list stop at its page instead of sorting every
row the user may see.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DATE_LEXEMES = ("ARRAY['~y:' || extract(year FROM date_issued)::int, '~m:' || to_char(date_issued, 'YYYYMM')]")


def upgrade() -> None:
    op.create_index('ix_documents_date_issued', 'documents', ['date_issued', 'id'], unique=False)
    op.create_index('ix_documents_created_id', 'documents', ['created_at', 'id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"UPDATE documents SET search_vector = coalesce(search_vector, ''::tsvector) "
                   f"|| array_to_tsvector({_DATE_LEXEMES}) WHERE date_issued IS NOT NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"UPDATE documents SET search_vector = ts_delete(search_vector, {_DATE_LEXEMES}) "
                   "WHERE date_issued IS NOT NULL")
    op.drop_index('ix_documents_created_id', table_name='documents')
    op.drop_index('ix_documents_date_issued', table_name='documents')
