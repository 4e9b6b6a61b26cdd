"""Contract of the account API: who am I, uploads, API tokens, passwords, accounts (administrators)."""

from __future__ import annotations

from typing import Any

from web.contract.core import Body, OptInt, Out, Text


class User(Out):
    """A user account."""

    id: int
    username: str
    full_name: str
    title: str
    unit_id: int | None
    roles: list[str]


class AccountUser(User):
    active: bool


class UserList(Out):
    users: list[AccountUser]


class Upload(Out):
    """An uploaded file, to attach afterwards (its id)."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class ApiToken(Out):
    id: int
    name: str
    scope: str
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked: bool


class TokenList(Out):
    tokens: list[ApiToken]


class TokenCreate(Body):
    name: Text = ""
    scope: Text = "full"
    expires_days: OptInt = None


class TokenCreated(Out):
    """The token itself, shown only this once."""

    token: str


class PasswordChange(Body):
    current_password: Text = ""
    new_password: Text = ""


class PasswordSet(Body):
    password: Text = ""


class OpenApiDocument(Out):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
