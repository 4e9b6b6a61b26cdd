"""Accounts: passwords (argon2), login with throttling, browser sessions and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, ForeignKey, Integer, String, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from eoffice import audit
from eoffice.org import Role, Unit, User
from storage.db import Base, UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound, Throttled, Unauthenticated

_hasher = PasswordHasher()
MIN_PASSWORD = 8


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


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    success: Mapped[bool] = mapped_column(Boolean, default=False)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"Mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự.", field="password")


def require_admin(actor: User | None) -> None:
    if actor is not None and not actor.is_admin:
        raise Forbidden("Chỉ quản trị hệ thống được thực hiện thao tác này.")


async def create_user(
    uow: UnitOfWork,
    actor: User | None,
    *,
    username: str,
    full_name: str,
    password: str,
    roles: Sequence[str] = (Role.SPECIALIST,),
    unit_id: int | None = None,
    title: str = "",
    email: str = "",
) -> User:
    """Create an account. ``actor`` None means the command line (an operator on the server)."""
    require_admin(actor)
    username = username.strip().lower()
    if not username or not username.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise Invalid("Tên đăng nhập chỉ gồm chữ, số, dấu chấm, gạch dưới, gạch ngang.", field="username")
    if not full_name.strip():
        raise Invalid("Cần nhập họ và tên.", field="full_name")
    validate_password(password)
    bad = [r for r in roles if r not in {x.value for x in Role}]
    if bad:
        raise Invalid(f"Vai trò không hợp lệ: {', '.join(bad)}", field="roles")
    if await uow.session.scalar(select(User.id).where(User.username == username)):
        raise Conflict(f"Tên đăng nhập «{username}» đã tồn tại.", field="username")
    if unit_id is not None and await uow.session.get(Unit, unit_id) is None:
        raise NotFound("Không tìm thấy đơn vị.", field="unit_id")
    user = User(username=username, full_name=full_name.strip(), password_hash=hash_password(password),
                roles=[str(r) for r in roles], unit_id=unit_id, title=title, email=email)
    uow.session.add(user)
    await uow.session.flush()
    await audit.record(uow, actor, "user.create", "user", user.id, username=username, roles=list(user.roles))
    return user


async def set_password(uow: UnitOfWork, actor: User | None, user: User, password: str) -> None:
    if actor is not None and actor.id != user.id:
        require_admin(actor)
    validate_password(password)
    user.password_hash = hash_password(password)
    await uow.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    await audit.record(uow, actor, "user.password", "user", user.id)


async def _recent_failures(uow: UnitOfWork, column: object, value: str, since: dt.datetime) -> int:
    q = select(func.count()).select_from(LoginAttempt).where(
        column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= since  # type: ignore[operator]
    )
    return int(await uow.session.scalar(q) or 0)


async def authenticate(
    uow: UnitOfWork, username: str, password: str, ip: str, *, max_failures: int, window_seconds: int
) -> User:
    """Check a password. Refuses for a while after ``max_failures`` failures per account or address.

    Every attempt is recorded and committed (a failed attempt too), so throttling holds across
    server processes and restarts.
    """
    username = username.strip().lower()
    since = utcnow() - dt.timedelta(seconds=window_seconds)
    if (
        await _recent_failures(uow, LoginAttempt.username, username, since) >= max_failures
        or await _recent_failures(uow, LoginAttempt.ip, ip, since) >= max_failures * 4
    ):
        minutes = max(1, window_seconds // 60)
        raise Throttled(f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} phút.",
                        retry_after=window_seconds)
    user = await uow.session.scalar(select(User).where(User.username == username))
    ok = user is not None and user.active and check_password(user.password_hash, password)
    uow.session.add(LoginAttempt(username=username, ip=ip, success=ok))
    if not ok:
        await audit.record(uow, None, "login.failed", "user", user.id if user else "", ip=ip, username=username)
        await uow.commit()
        raise Unauthenticated("Tên đăng nhập hoặc mật khẩu không đúng.")
    assert user is not None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    await audit.record(uow, user, "login", "user", user.id, ip=ip)
    # A security notice on the owner's other devices: a login they did not make is worth seeing.
    where = ip or "không rõ"
    uow.emit(f"user:{user.id}", "login", ip=ip, message=f"Tài khoản của bạn vừa đăng nhập từ địa chỉ {where}.")
    return user


async def start_session(uow: UnitOfWork, user: User, days: int, ip: str = "", user_agent: str = "") -> str:
    token = secrets.token_urlsafe(32)
    uow.session.add(UserSession(token_hash=sha256(token), user_id=user.id, ip=ip, user_agent=user_agent[:300],
                                expires_at=utcnow() + dt.timedelta(days=days)))
    return token


async def session_user(uow: UnitOfWork, token: str) -> User | None:
    row = await uow.session.scalar(select(UserSession).where(UserSession.token_hash == sha256(token)))
    if row is None or row.expires_at < utcnow():
        return None
    user = await uow.session.get(User, row.user_id)
    return user if user is not None and user.active else None


async def end_session(uow: UnitOfWork, user: User | None, token: str, ip: str = "") -> None:
    await uow.session.execute(delete(UserSession).where(UserSession.token_hash == sha256(token)))
    if user is not None:
        await audit.record(uow, user, "logout", "user", user.id, ip=ip)


TOKEN_PREFIX = "eo_"
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=5)


async def create_token(uow: UnitOfWork, actor: User | None, user: User, name: str = "") -> str:
    if actor is not None and actor.id != user.id:
        require_admin(actor)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(token_hash=sha256(token), user_id=user.id, name=name)
    uow.session.add(row)
    await uow.session.flush()
    await audit.record(uow, actor, "token.create", "api_token", row.id, user=user.username, name=name)
    return token


async def token_lookup(uow: UnitOfWork, token: str) -> tuple[User | None, bool]:
    """The token's user (None if unknown, revoked or inactive) and whether its last use is stale.

    Reads only: an API client's every request must not be a write. ``touch_token`` records the
    use, at most every few minutes."""
    row = await uow.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == sha256(token), ApiToken.revoked.is_(False))
    )
    if row is None:
        return None, False
    user = await uow.session.get(User, row.user_id)
    if user is None or not user.active:
        return None, False
    stale = row.last_used_at is None or utcnow() - row.last_used_at > TOKEN_TOUCH_INTERVAL
    return user, stale


async def touch_token(uow: UnitOfWork, token: str) -> None:
    await uow.session.execute(
        update(ApiToken).where(ApiToken.token_hash == sha256(token)).values(last_used_at=utcnow())
    )


async def get_user(uow: UnitOfWork, username: str) -> User:
    user = await uow.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"Không có người dùng «{username}».")
    return user
