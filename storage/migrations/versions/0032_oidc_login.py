"""OpenID Connect login (#18): pending authorization requests (state, nonce, PKCE verifier) and the provider's
ID token kept with the sessions (and pending second-factor steps) it opened, for logout at the provider.

Revision ID: 0032
Revises: 0030
Create Date: 2026-12-07 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0032'
down_revision: str | None = '0030'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_path", sa.String(length=500), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("state_hash"),
    )
    op.create_index("ix_oidc_logins_browser_hash", "oidc_logins", ["browser_hash"])
    op.create_index("ix_oidc_logins_expires_at", "oidc_logins", ["expires_at"])
    with op.batch_alter_table("user_sessions") as batch_op:
        batch_op.add_column(sa.Column("sso_id_token", sa.Text(), nullable=True))
    with op.batch_alter_table("login_challenges") as batch_op:
        batch_op.add_column(sa.Column("sso_id_token", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("login_challenges") as batch_op:
        batch_op.drop_column("sso_id_token")
    with op.batch_alter_table("user_sessions") as batch_op:
        batch_op.drop_column("sso_id_token")
    op.drop_index("ix_oidc_logins_expires_at", table_name="oidc_logins")
    op.drop_index("ix_oidc_logins_browser_hash", table_name="oidc_logins")
    op.drop_table("oidc_logins")
