"""Search on PostgreSQL (issue 4): the search vector also carries each document's reader keys and
recency bucket (``eoffice.search``), so one GIN lookup applies the access rule and the recency
bound. No schema change: this fills the new lexemes in for every document (one never indexed gets
the keys alone: listed by an empty search, found by words once indexed).

The SQL below is the rule of ``eoffice.access.reader_keys`` as of this revision (a migration is
history); from now on the application keeps the keys in step.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STRIP = ("ts_delete(coalesce(search_vector, ''::tsvector), ARRAY(SELECT u.lexeme FROM unnest(search_vector) AS u "
          "WHERE u.lexeme LIKE '~%'))")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite searches with FTS5 and the live access filter
    op.execute(f"""
        UPDATE documents d SET search_vector = {_STRIP} || array_to_tsvector(
            ARRAY['~b:' || (d.id >> 13)]
            || coalesce((SELECT array_agg(DISTINCT CASE WHEN g.user_id IS NOT NULL THEN '~u:' || g.user_id
                                                        ELSE '~g:' || g.unit_id END)
                         FROM document_grants g WHERE g.document_id = d.id), ARRAY[]::text[])
            || CASE WHEN d.confidentiality = 'thuong' AND (d.number IS NOT NULL OR d.status = 'approved')
                    THEN ARRAY['~r:' || d.agency_id] ELSE ARRAY[]::text[] END)
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"UPDATE documents SET search_vector = {_STRIP} WHERE search_vector IS NOT NULL")
