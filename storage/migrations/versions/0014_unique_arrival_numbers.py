"""A number is given once per register: a unique index on (register_id, number).

Numbers are allocated under a row lock (``registers.allocate_number``), so the application never
gives one twice; this makes the database refuse it too, whatever writes the row (a script, a
restore merged by hand, a future bug). Unnumbered documents (drafts: NULL) are not concerned.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 21:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("uq_documents_register_number", "documents", ["register_id", "number"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_documents_register_number", table_name="documents")
