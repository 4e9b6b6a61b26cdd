"""Exchange between installations (#16): peers (organisation id, address, Ed25519 public key), the outbox of
packages to deliver to them and the receipts of signed requests that arrived (replays, idempotency).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0036'
down_revision: str | None = '0035'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_peers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("organ_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("clerk_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["units.id"]),
        sa.ForeignKeyConstraint(["clerk_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id", "organ_id", name="uq_exchange_peers_agency_organ"),
    )
    op.create_index("ix_exchange_peers_agency_id", "exchange_peers", ["agency_id"])
    op.create_table(
        "exchange_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("idem_key", sa.String(length=140), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("status_event_id", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.String(length=2), nullable=True),
        sa.Column("blob_key", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["units.id"]),
        sa.ForeignKeyConstraint(["peer_id"], ["exchange_peers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["status_event_id"], ["edxml_status_events.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("peer_id", "idem_key", name="uq_exchange_outbox_peer_key"),
    )
    op.create_index("ix_exchange_outbox_agency_id", "exchange_outbox", ["agency_id"])
    op.create_index("ix_exchange_outbox_document_id", "exchange_outbox", ["document_id"])
    op.create_index("ix_exchange_outbox_sent_at_next_attempt_at", "exchange_outbox", ["sent_at", "next_attempt_at"])
    op.create_table(
        "exchange_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("idem_key", sa.String(length=140), nullable=False),
        sa.Column("result", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("quarantine_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["units.id"]),
        sa.ForeignKeyConstraint(["peer_id"], ["exchange_peers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["quarantine_id"], ["edxml_quarantine.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("peer_id", "request_id", name="uq_exchange_receipts_request"),
    )
    op.create_index("ix_exchange_receipts_agency_id", "exchange_receipts", ["agency_id"])
    op.create_index("ix_exchange_receipts_key", "exchange_receipts", ["peer_id", "idem_key"])


def downgrade() -> None:
    op.drop_table("exchange_receipts")
    op.drop_table("exchange_outbox")
    op.drop_table("exchange_peers")
