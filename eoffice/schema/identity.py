"""Browser sessions, API tokens and login attempts. Services: ``eoffice.identity``,
``eoffice.login_throttle``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, utcnow


class UserSession(Base):
    """A browser session. The cookie carries a random token; only its sha256 is stored."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # Opened by a user whose role requires two-factor login but who has not enrolled yet: it may only reach
    # the enrolment page (and log out) until enrolment is confirmed (``web.auth``).
    enrol_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # Opened through the OpenID Provider (``eoffice.sso``): its ID token, the hint its logout endpoint asks for
    sso_id_token: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime | None] = mapped_column()  # None: until revoked
    scope: Mapped[str] = mapped_column(String(10), default="full", server_default="full")  # TOKEN_SCOPES

    def public(self) -> dict[str, object]:
        """What the owner and administrators see; never the token (only its hash is stored anyway)."""
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "name": self.name, "scope": self.scope, "created_at": iso(self.created_at),
                "expires_at": iso(self.expires_at), "last_used_at": iso(self.last_used_at),
                "revoked": self.revoked}


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    success: Mapped[bool] = mapped_column(Boolean, default=False)


class UserTotp(Base):
    """A user's TOTP authenticator (``eoffice.two_factor``). The secret is AES-GCM encrypted with a key
    derived from the server's secret; ``confirmed_at`` None while enrolment waits for a first code."""

    __tablename__ = "user_totp"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column()
    last_step: Mapped[int] = mapped_column(Integer, default=0)  # the newest time step accepted: no replay
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """A one-time recovery code (argon2 hash, as passwords); ``used_at`` set once it has been used."""

    __tablename__ = "user_recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[dt.datetime | None] = mapped_column()


class LoginChallenge(Base):
    """A login waiting for its second factor: the password was right, the code is still to come. Bound to the
    browser by a random token in a signed cookie (only its sha256 here), short-lived, a few tries."""

    __tablename__ = "login_challenges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column()
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_path: Mapped[str] = mapped_column(String(500), default="/")
    ip: Mapped[str] = mapped_column(String(64), default="")
    sso_id_token: Mapped[str | None] = mapped_column(Text)  # the login came through the OpenID Provider


class OidcLogin(Base):
    """A login sent to the OpenID Provider and not back yet (``eoffice.sso``): the state, nonce and PKCE verifier
    of one authorization request, bound to the browser that started it by a random token in a cookie (only its
    sha256 here). Used once (deleted when the provider answers), expires after a few minutes."""

    __tablename__ = "oidc_logins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64), index=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(500), default="/")
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class TwoFactorRole(Base):
    """A role whose members must log in with a second factor (set by an administrator)."""

    __tablename__ = "two_factor_roles"
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
