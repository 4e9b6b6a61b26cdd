"""Secret polls get a ballot key of their own; the audit chain gets a MAC key and a switch-over point.

``meeting_poll_keys``: one row per open secret poll, its random ballot key wrapped (AES-GCM) under a key
derived from the server's secret (kept outside the database, ``storage.keys``). The row is overwritten
and deleted when the poll closes or is cancelled, so the sealed ballots become undecryptable for good.

``audit_head.legacy_seq``: entries up to this number were written before the chain was keyed and are
checked with the old plain SHA-256; every later entry carries an HMAC-SHA256 (``eoffice.audit``). The
number is set here to the current head, and ``legacy_tag`` (an HMAC of it, written by the first process
that has the key: ``eoffice migrate`` or the server's start) stops anyone from moving it later.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_poll_keys",
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["meeting_polls.id"], name=op.f("fk_meeting_poll_keys_poll_id_meeting_polls"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("poll_id", name=op.f("pk_meeting_poll_keys")),
    )
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.add_column(sa.Column("legacy_seq", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("legacy_tag", sa.String(64), nullable=False, server_default=""))
    op.execute("UPDATE audit_head SET legacy_seq = seq")


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.drop_column("legacy_tag")
        batch_op.drop_column("legacy_seq")
    op.drop_table("meeting_poll_keys")
