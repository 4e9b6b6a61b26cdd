"""Accounts: passwords (argon2), login with throttling, browser sessions and API tokens."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Sequence

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from eoffice import audit, directory, login_throttle
from eoffice.login_throttle import ThrottlePolicy
from eoffice.org import Role, Unit, User
from eoffice.schema.identity import ApiToken, LoginAttempt, UserSession
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound, Throttled, Unauthenticated

_hasher = PasswordHasher()
MIN_PASSWORD = 8


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


MAX_PASSWORD = 200  # argon2 hashes anything, but a megabyte "password" is only a way to burn CPU
_COMMON = {"12345678", "123456789", "1234567890", "password", "matkhau", "matkhau123", "qwerty123", "abc12345",
           "admin123", "password1", "11111111", "00000000", "iloveyou"}


def validate_password(password: str, username: str = "") -> None:
    """The strength rule: 8 to 200 characters, at least two kinds among letters, digits and other
    characters, not a well-known password, not containing the account name."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"Mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự.", field="password")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"Mật khẩu không được dài quá {MAX_PASSWORD} ký tự.", field="password")
    kinds = sum((any(c.isalpha() for c in password), any(c.isdigit() for c in password),
                 any(not c.isalnum() for c in password)))
    if kinds < 2 or password.lower() in _COMMON or len(set(password)) < 4:
        raise Invalid("Mật khẩu quá dễ đoán: cần kết hợp ít nhất hai loại trong chữ cái, chữ số và ký tự khác "
                      "(ví dụ «Hop-HDND-2026»), không dùng mật khẩu phổ biến.", field="password")
    name = username.strip().lower()
    if len(name) >= 3 and name in password.lower():
        raise Invalid("Mật khẩu không được chứa tên đăng nhập.", field="password")


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
    validate_password(password, username)
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


_dummy_hash: str | None = None


def _dummy_password_hash() -> str:
    """A hash to check unknown usernames against: the answer takes as long as for a real account."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


async def _password_matches(user: User | None, username: str, password: str,
                            config: directory.DirectoryConfig | None) -> tuple[bool, bool]:
    """(matches, by the directory): the password kept here, or a bind to the directory (``eoffice.directory``)
    for the accounts that come from it, for every account when its local password fails and ``login`` is
    "all", and for unknown names too (a search that finds no one): with a directory, the answer's timing
    tells no more than without one."""
    if config is None or (user is not None and user.directory_id is None and config.login != "all"):
        return check_password(user.password_hash if user is not None else _dummy_password_hash(), password), False
    if user is not None and user.directory_id is None:  # login "all": the local password first
        if check_password(user.password_hash, password):
            return True, False
    else:
        check_password(_dummy_password_hash(), password)  # the same cost as a local account's check
    bind = functools.partial(directory.check_password, config, username, password,
                             user.directory_id if user is not None else None)
    return await anyio.to_thread.run_sync(bind), True


async def authenticate(
    uow: UnitOfWork, username: str, password: str, ip: str, *, policy: ThrottlePolicy | None = None,
    now: dt.datetime | None = None, finish: bool = True, directory_config: directory.DirectoryConfig | None = None,
) -> User:
    """Check a password, after the progressive delay its account and address have earned (``login_throttle``).

    Every attempt is recorded and committed (a failed attempt too), so throttling holds across
    server processes and restarts. Unknown and inactive accounts cost one password hash like the
    others: the answer's timing does not tell which usernames exist. ``now`` is for tests (a clock).
    ``finish`` False: the password was right but a second factor is still to come (``eoffice.two_factor``):
    no success is recorded yet (it would reset the counters that wrong codes build up).
    ``directory_config``: the LDAP directory that checks the passwords of its accounts (``_password_matches``);
    when it does not answer, ``DirectoryUnavailable`` and no attempt is recorded (nothing was decided).
    """
    policy = policy or ThrottlePolicy()
    now = now or utcnow()
    username = username.strip().lower()[:80]
    wait = await login_throttle.wait_seconds(uow, policy, username, ip, now)
    if wait:
        raise Throttled(f"Đăng nhập sai nhiều lần. Vui lòng thử lại sau {wait} giây.", retry_after=wait)
    user = await uow.session.scalar(select(User).where(User.username == username))
    matches, by_directory = await _password_matches(user, username, password, directory_config)
    ok = user is not None and matches and user.active
    if not ok:
        uow.session.add(LoginAttempt(username=username, ip=ip[:64], success=False, at=now))
        reason = "inactive" if user is not None and matches else "wrong"
        await audit.record(uow, None, "login.failed", "user", user.id if user else "", ip=ip, username=username,
                           reason=reason, **({"via": "directory"} if by_directory else {}))
        await uow.commit()
        if reason == "inactive":  # only to whoever knows the password
            raise Unauthenticated("Tài khoản đã bị khóa. Vui lòng liên hệ quản trị hệ thống.")
        raise Unauthenticated("Tên đăng nhập hoặc mật khẩu không đúng.")
    assert user is not None
    if not by_directory and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if finish:
        await login_succeeded(uow, user, ip, now)
    return user


async def login_succeeded(uow: UnitOfWork, user: User, ip: str, now: dt.datetime | None = None,
                          **details: object) -> None:
    """Record a complete login (password, and the second factor if any): the attempt, the audit entry and
    a notice on the owner's other devices."""
    uow.session.add(LoginAttempt(username=user.username, ip=ip[:64], success=True, at=now or utcnow()))
    await audit.record(uow, user, "login", "user", user.id, ip=ip, **details)
    # A security notice on the owner's other devices: a login they did not make is worth seeing.
    where = ip or "không rõ"
    uow.emit(f"user:{user.id}", "login", ip=ip, message=f"Tài khoản của bạn vừa đăng nhập từ địa chỉ {where}.")


async def start_session(uow: UnitOfWork, user: User, days: int, ip: str = "", user_agent: str = "", *,
                        enrol_only: bool = False, sso_id_token: str | None = None) -> str:
    """A browser session; ``enrol_only``: good only for enrolling a second factor (``eoffice.two_factor``);
    ``sso_id_token``: opened through the OpenID Provider (``eoffice.sso``), kept for logging out there."""
    token = secrets.token_urlsafe(32)
    uow.session.add(UserSession(token_hash=sha256(token), user_id=user.id, ip=ip, user_agent=user_agent[:300],
                                expires_at=utcnow() + dt.timedelta(days=days), enrol_only=enrol_only,
                                sso_id_token=sso_id_token))
    return token


async def session_user(uow: UnitOfWork, token: str) -> User | None:
    row = await uow.session.scalar(select(UserSession).where(UserSession.token_hash == sha256(token)))
    if row is None or row.expires_at < utcnow():
        return None
    user = await uow.session.get(User, row.user_id)
    return user if user is not None and user.active else None


async def end_session(uow: UnitOfWork, user: User | None, token: str, ip: str = "") -> str | None:
    """End a browser session; returns the provider's ID token when it was opened through SSO (for the provider's
    own logout), else None."""
    sso_id_token = await uow.session.scalar(
        delete(UserSession).where(UserSession.token_hash == sha256(token)).returning(UserSession.sso_id_token))
    if user is not None:
        await audit.record(uow, user, "logout", "user", user.id, ip=ip, **({"via": "sso"} if sso_id_token else {}))
    return sso_id_token


TOKEN_PREFIX = "eo_"
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=5)


TOKEN_SCOPES = ("full", "read")  # read: GET and HEAD only
MAX_TOKEN_DAYS = 3650


async def create_token(uow: UnitOfWork, actor: User | None, user: User, name: str = "", *, scope: str = "full",
                       expires_days: int | None = None) -> str:
    """A new API token for ``user`` (shown once; only its sha256 is stored)."""
    if actor is not None and actor.id != user.id:
        require_admin(actor)
    if scope not in TOKEN_SCOPES:
        raise Invalid("Phạm vi mã truy cập phải là «full» (đọc và ghi) hoặc «read» (chỉ đọc).", field="scope")
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise Invalid(f"Thời hạn mã truy cập phải từ 1 đến {MAX_TOKEN_DAYS} ngày.", field="expires_days")
    name = name.strip()[:100]
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(days=expires_days) if expires_days else None
    row = ApiToken(token_hash=sha256(token), user_id=user.id, name=name, scope=scope, expires_at=expires)
    uow.session.add(row)
    await uow.session.flush()
    await audit.record(uow, actor, "token.create", "api_token", row.id, user=user.username, name=name, scope=scope,
                       expires_at=expires.isoformat() if expires else None)
    return token


def token_usable(now: dt.datetime) -> object:
    """The SQL condition of a token that authenticates: not revoked, not expired."""
    return ApiToken.revoked.is_(False) & (ApiToken.expires_at.is_(None) | (ApiToken.expires_at > now))


async def token_lookup(uow: UnitOfWork, token: str) -> tuple[User | None, bool, str]:
    """The token's user (None if unknown, revoked, expired or inactive), whether its last use is
    stale, and its scope.

    Reads only: an API client's every request must not be a write. ``touch_token`` records the
    use, at most every few minutes."""
    row = await uow.session.scalar(select(ApiToken).where(ApiToken.token_hash == sha256(token),
                                                          token_usable(utcnow())))  # type: ignore[arg-type]
    if row is None:
        return None, False, ""
    user = await uow.session.get(User, row.user_id)
    if user is None or not user.active:
        return None, False, ""
    stale = row.last_used_at is None or utcnow() - row.last_used_at > TOKEN_TOUCH_INTERVAL
    return user, stale, row.scope


async def touch_token(uow: UnitOfWork, token: str) -> None:
    await uow.session.execute(
        update(ApiToken).where(ApiToken.token_hash == sha256(token)).values(last_used_at=utcnow())
    )


async def get_user(uow: UnitOfWork, username: str) -> User:
    user = await uow.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"Không có người dùng «{username}».")
    return user
