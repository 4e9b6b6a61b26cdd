"""Account administration: own password, reset by an administrator, deactivation, API tokens.

Every change that takes access away returns a ``Revoked``: which credentials of which user no
longer work, so the caller (route, command line) can close the live sockets that use them
(``web.hub.close_message``). The credentials themselves stop working at once without it:
every request and every WebSocket command looks its session or token up in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update

from eoffice import audit
from eoffice.identity import check_password, hash_password, require_admin, validate_password
from eoffice.org import User
from eoffice.schema.identity import ApiToken, UserSession
from storage.db import UnitOfWork
from storage.errors import Conflict, Forbidden, Invalid, NotFound

Credential = tuple[str, str]  # ("session" | "bearer", sha256 of the token), as web.auth.credential gives


@dataclass(frozen=True)
class Revoked:
    """Credentials of ``user_id`` that no longer work: ``only`` these (None: all of them) except ``keep``."""

    user_id: int
    only: tuple[Credential, ...] | None = None
    keep: Credential | None = None


async def user_by_id(uow: UnitOfWork, user_id: int) -> User:
    user = await uow.session.get(User, user_id)
    if user is None:
        raise NotFound("Không tìm thấy người dùng.")
    return user


async def list_users(uow: UnitOfWork, actor: User | None) -> list[User]:
    require_admin(actor)
    return list((await uow.session.scalars(select(User).order_by(User.username))).all())


async def _revoke_everything(uow: UnitOfWork, user: User, keep_session: str | None = None) -> tuple[int, int]:
    """End the user's sessions (but ``keep_session``, a sha256) and revoke their tokens: (sessions, tokens)."""
    ended = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_session is not None:
        ended = ended.where(UserSession.token_hash != keep_session)
    sessions = (await uow.session.execute(ended)).rowcount or 0  # type: ignore[attr-defined]
    tokens = (await uow.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False)).values(revoked=True)
    )).rowcount or 0  # type: ignore[attr-defined]
    return int(sessions), int(tokens)


async def change_own_password(uow: UnitOfWork, user: User, current: str, new: str,
                              session_hash: str | None = None, ip: str = "") -> Revoked:
    """The user's own change: needs the current password. Ends the user's other sessions and revokes
    every API token (whoever may have copied them); the session that made the change (``session_hash``) stays."""
    if not check_password(user.password_hash, current):
        raise Invalid("Mật khẩu hiện tại không đúng.", field="current_password")
    if new == current:
        raise Invalid("Mật khẩu mới phải khác mật khẩu hiện tại.", field="new_password")
    validate_password(new, user.username)
    user.password_hash = hash_password(new)
    sessions, tokens = await _revoke_everything(uow, user, keep_session=session_hash)
    await audit.record(uow, user, "user.password.change", "user", user.id, ip=ip, user=user.username,
                       sessions_ended=sessions, tokens_revoked=tokens)
    keep = ("session", session_hash) if session_hash else None
    return Revoked(user.id, keep=keep)


async def reset_password(uow: UnitOfWork, actor: User | None, user: User, new: str, ip: str = "") -> Revoked:
    """An administrator (or the command line: ``actor`` None) sets a new password: every session and token ends."""
    require_admin(actor)
    validate_password(new, user.username)
    user.password_hash = hash_password(new)
    sessions, tokens = await _revoke_everything(uow, user)
    await audit.record(uow, actor, "user.password.reset", "user", user.id, ip=ip, user=user.username,
                       sessions_ended=sessions, tokens_revoked=tokens)
    return Revoked(user.id)


async def set_active(uow: UnitOfWork, actor: User | None, user: User, active: bool, ip: str = "") -> Revoked | None:
    """Deactivate (every session ends and every token is revoked: a reactivation brings none back) or reactivate."""
    require_admin(actor)
    if not active and actor is not None and actor.id == user.id:
        raise Forbidden("Không thể tự khóa tài khoản của chính mình.")
    if user.active == active:
        raise Conflict("Tài khoản đang hoạt động." if active else "Tài khoản đã bị khóa trước đó.")
    user.active = active
    if active:
        await audit.record(uow, actor, "user.activate", "user", user.id, ip=ip, user=user.username)
        return None
    sessions, tokens = await _revoke_everything(uow, user)
    await audit.record(uow, actor, "user.deactivate", "user", user.id, ip=ip, user=user.username,
                       sessions_ended=sessions, tokens_revoked=tokens)
    return Revoked(user.id)


async def list_tokens(uow: UnitOfWork, actor: User | None, user: User) -> list[ApiToken]:
    """A user's tokens, newest first (the owner's own, or anyone's for an administrator)."""
    if actor is not None and actor.id != user.id:
        require_admin(actor)
    rows = await uow.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                     .order_by(ApiToken.id.desc()))
    return list(rows.all())


async def revoke_token(uow: UnitOfWork, actor: User | None, token_id: int, ip: str = "") -> Revoked:
    row = await uow.session.get(ApiToken, token_id)
    if row is None or (actor is not None and row.user_id != actor.id and not actor.is_admin):
        raise NotFound("Không tìm thấy mã truy cập.")  # another user's token: not even its existence
    if row.revoked:
        raise Conflict("Mã truy cập đã bị thu hồi trước đó.")
    row.revoked = True
    owner = await uow.session.get(User, row.user_id)
    await audit.record(uow, actor, "token.revoke", "api_token", row.id, ip=ip,
                       user=owner.username if owner else "", name=row.name)
    return Revoked(row.user_id, only=(("bearer", row.token_hash),))


def parse_id(value: object, what: str = "mã") -> int:
    """An id from a URL or form: a clear 4xx for anything but a positive 63-bit integer."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:
        raise Invalid(f"{what.capitalize()} không hợp lệ.")
    return int(text)
