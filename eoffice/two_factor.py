"""Two-factor login (TOTP, RFC 6238) with one-time recovery codes, and the roles that must use it.

- Enrolment: ``start_enrolment`` makes a secret (shown as an ``otpauth://`` URI and its QR code),
  ``confirm_enrolment`` turns it on with a first code and returns ten recovery codes, shown once and
  stored as argon2 hashes like passwords. ``disable`` needs a code too.
- The secret is stored AES-GCM encrypted with a key derived from the server's secret
  (``storage.keys``, label ``SECRET_LABEL``; the user's id is the associated data, so a ciphertext
  copied onto another account does not open): a copy of the database alone gives no working codes.
- Login: after the right password, an enrolled user gets a ``LoginChallenge`` instead of a session:
  a random token in a cookie of that browser (only its sha256 is stored), valid ``CHALLENGE_MINUTES``
  for ``CHALLENGE_TRIES`` codes. Wrong codes are failed login attempts, so the progressive delay
  (``eoffice.login_throttle``) covers them; the password step of an enrolled user records no success,
  so knowing the password does not reset the counters the code guesses build up.
- Replay: a code's time step must be newer than the last accepted one (``UserTotp.last_step``, a
  conditional UPDATE: two requests racing with the same code cannot both win, on PostgreSQL too).
- Required roles (``TwoFactorRole``): such a user without 2FA gets an ``enrol_only`` session at login,
  good for nothing but enrolment (``web.auth``) until enrolment is confirmed. API tokens are unaffected.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select, update

from eoffice import audit, identity, login_throttle
from eoffice.login_throttle import ThrottlePolicy
from eoffice.org import Role, User
from eoffice.schema.identity import LoginAttempt, LoginChallenge, RecoveryCode, TwoFactorRole, UserSession, UserTotp
from storage import keys
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, Throttled, Unauthenticated

SECRET_LABEL = "eoffice.identity.totp-secret.v1"
ISSUER = "eOffice"
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread on paper
RECOVERY_LENGTH = 10
CHALLENGE_MINUTES = 5
CHALLENGE_TRIES = 5
DRIFT_STEPS = 1  # a code of the step before or after the server's clock is accepted

WRONG_CODE = "Mã xác thực không đúng."
REPLAYED_CODE = "Mã xác thực này đã được dùng. Vui lòng chờ mã mới trên ứng dụng xác thực."
EXPIRED = "Phiên xác thực đã hết hạn hoặc không hợp lệ. Vui lòng đăng nhập lại."


# -- the secret at rest ---------------------------------------------------------------------------

def _cipher(uow: UnitOfWork) -> AESGCM:
    return AESGCM(keys.key_for(uow.db.url, SECRET_LABEL))


def _aad(user_id: int) -> bytes:
    return f"totp:{user_id}".encode()


def encrypt_secret(uow: UnitOfWork, user_id: int, secret: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + _cipher(uow).encrypt(nonce, secret.encode(), _aad(user_id))


def decrypt_secret(uow: UnitOfWork, user_id: int, blob: bytes) -> str:
    try:
        return _cipher(uow).decrypt(blob[:12], blob[12:], _aad(user_id)).decode()
    except InvalidTag:
        raise Conflict("Không mở được khóa xác thực hai lớp: khóa bí mật của máy chủ đã thay đổi. "
                       "Quản trị hệ thống cần đặt lại xác thực hai lớp cho tài khoản này.") from None


# -- who must, who has ----------------------------------------------------------------------------

async def required_roles(uow: UnitOfWork) -> set[str]:
    return set((await uow.session.scalars(select(TwoFactorRole.role))).all())


async def is_required(uow: UnitOfWork, user: User) -> bool:
    return bool(set(user.roles) & await required_roles(uow))


async def enrolled(uow: UnitOfWork, user: User) -> bool:
    row = await uow.session.get(UserTotp, user.id)
    return row is not None and row.confirmed_at is not None


async def set_required_roles(uow: UnitOfWork, actor: User | None, roles: Iterable[str], ip: str = "") -> None:
    """The roles whose members must use two-factor login (an administrator; None: the command line)."""
    identity.require_admin(actor)
    wanted = {str(r) for r in roles}
    bad = wanted - {r.value for r in Role}
    if bad:
        raise Invalid(f"Vai trò không hợp lệ: {', '.join(sorted(bad))}", field="roles")
    current = await required_roles(uow)
    if wanted == current:
        return
    await uow.session.execute(delete(TwoFactorRole).where(TwoFactorRole.role.not_in(wanted)))
    for role in sorted(wanted - current):
        uow.session.add(TwoFactorRole(role=role, set_by=actor.id if actor else None))
    await audit.record(uow, actor, "twofactor.roles", "two_factor", "roles", roles=sorted(wanted), ip=ip)


# -- enrolment ------------------------------------------------------------------------------------

def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


async def start_enrolment(uow: UnitOfWork, user: User) -> str:
    """A new secret waiting for its first code (replaces one not confirmed yet); returns it."""
    row = await uow.session.get(UserTotp, user.id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("Xác thực hai lớp đã được bật. Hãy tắt trước khi đăng ký thiết bị mới.")
    secret = pyotp.random_base32()
    if row is None:
        uow.session.add(UserTotp(user_id=user.id, secret_enc=encrypt_secret(uow, user.id, secret), last_step=0))
    else:
        row.secret_enc = encrypt_secret(uow, user.id, secret)
        row.created_at = utcnow()
    return secret


async def pending_secret(uow: UnitOfWork, user: User) -> str | None:
    """The secret of an enrolment not confirmed yet (to show again), else None."""
    row = await uow.session.get(UserTotp, user.id)
    if row is None or row.confirmed_at is not None:
        return None
    return decrypt_secret(uow, user.id, row.secret_enc)


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())[:40]


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step, *[step + d for k in range(1, DRIFT_STEPS + 1) for d in (-k, k)]):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


async def _claim_step(uow: UnitOfWork, user_id: int, step: int) -> bool:
    """Accept the time step ``step`` once: only if it is newer than the last one accepted."""
    result = await uow.session.execute(
        update(UserTotp).where(UserTotp.user_id == user_id, UserTotp.last_step < step).values(last_step=step))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def confirm_enrolment(uow: UnitOfWork, user: User, code: str, ip: str = "",
                            now: dt.datetime | None = None) -> list[str]:
    """Turn two-factor login on with a first code; returns the recovery codes (shown once)."""
    now = now or utcnow()
    row = await uow.session.get(UserTotp, user.id)
    if row is None or row.confirmed_at is not None:
        raise Conflict("Chưa có đăng ký xác thực hai lớp đang chờ xác nhận. Hãy bắt đầu lại.")
    step = _matching_step(decrypt_secret(uow, user.id, row.secret_enc), _normalise(code), now)
    if step is None or not await _claim_step(uow, user.id, step):
        raise Invalid("Mã xác thực không đúng. Hãy nhập mã 6 chữ số đang hiển thị trên ứng dụng.", field="code")
    row.confirmed_at = now
    codes = await _new_recovery_codes(uow, user)
    await uow.session.execute(update(UserSession).where(UserSession.user_id == user.id).values(enrol_only=False))
    await audit.record(uow, user, "user.2fa.enable", "user", user.id, ip=ip)
    return codes


async def _new_recovery_codes(uow: UnitOfWork, user: User) -> list[str]:
    await uow.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    for code in codes:
        uow.session.add(RecoveryCode(user_id=user.id, code_hash=identity.hash_password(_normalise(code))))
    return codes


async def recovery_codes_left(uow: UnitOfWork, user: User) -> int:
    rows = await uow.session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id,
                                                                   RecoveryCode.used_at.is_(None)))
    return len(rows.all())


async def verify_code(uow: UnitOfWork, user: User, code: str, now: dt.datetime | None = None) -> str:
    """Check a second-factor code of an enrolled user and use it up: "totp", "recovery", "replay" (a TOTP
    code whose time step was already accepted) or "wrong"."""
    now = now or utcnow()
    row = await uow.session.get(UserTotp, user.id)
    if row is None or row.confirmed_at is None:
        return "wrong"
    code = _normalise(code)
    if len(code) == 6 and (code.isascii() and code.isdigit()):
        step = _matching_step(decrypt_secret(uow, user.id, row.secret_enc), code, now)
        if step is None:
            return "wrong"
        return "totp" if await _claim_step(uow, user.id, step) else "replay"
    if len(code) == RECOVERY_LENGTH:
        unused = (await uow.session.scalars(select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))).all()
        for candidate in unused:
            if identity.check_password(candidate.code_hash, code):
                claimed = await uow.session.execute(update(RecoveryCode).where(
                    RecoveryCode.id == candidate.id, RecoveryCode.used_at.is_(None)).values(used_at=now))
                return "recovery" if claimed.rowcount else "replay"  # type: ignore[attr-defined]
    return "wrong"


async def disable(uow: UnitOfWork, user: User, code: str, ip: str = "") -> None:
    """Turn two-factor login off (a current code or a recovery code); not for a role that requires it."""
    if not await enrolled(uow, user):
        raise Conflict("Xác thực hai lớp chưa được bật.")
    if await is_required(uow, user):
        raise Forbidden("Vai trò của bạn bắt buộc xác thực hai lớp: không thể tắt. Nếu mất thiết bị, hãy liên hệ "
                        "quản trị hệ thống để đặt lại.")
    result = await verify_code(uow, user, code)
    if result == "replay":
        raise Invalid(REPLAYED_CODE, field="code")
    if result == "wrong":
        raise Invalid(WRONG_CODE, field="code")
    await _remove(uow, user)
    await audit.record(uow, user, "user.2fa.disable", "user", user.id, ip=ip)


async def _remove(uow: UnitOfWork, user: User) -> None:
    await uow.session.execute(delete(UserTotp).where(UserTotp.user_id == user.id))
    await uow.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await uow.session.execute(delete(LoginChallenge).where(LoginChallenge.user_id == user.id))


async def admin_reset(uow: UnitOfWork, actor: User | None, user: User, ip: str = "") -> None:
    """An administrator removes a user's authenticator and recovery codes (a lost phone). If the user's role
    requires 2FA, their open sessions are limited to enrolling again."""
    identity.require_admin(actor)
    had = await uow.session.get(UserTotp, user.id) is not None
    await _remove(uow, user)
    if await is_required(uow, user):
        await uow.session.execute(update(UserSession).where(UserSession.user_id == user.id).values(enrol_only=True))
    await audit.record(uow, actor, "user.2fa.reset", "user", user.id, username=user.username, had=had, ip=ip)


# -- the second login step ------------------------------------------------------------------------

async def start_challenge(uow: UnitOfWork, user: User, next_path: str, ip: str = "", *,
                          sso_id_token: str | None = None) -> str:
    """After the right password of an enrolled user (or the OpenID Provider's word, with the ID token it gave:
    ``eoffice.sso``): the token of a pending login (for a cookie)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await uow.session.execute(delete(LoginChallenge).where(LoginChallenge.expires_at < now))
    uow.session.add(LoginChallenge(token_hash=identity.sha256(token), user_id=user.id, ip=ip[:64],
                                   expires_at=now + dt.timedelta(minutes=CHALLENGE_MINUTES), tries=0,
                                   next_path=next_path[:500], sso_id_token=sso_id_token))
    return token


async def challenge_pending(uow: UnitOfWork, token: str) -> bool:
    row = await uow.session.scalar(select(LoginChallenge).where(LoginChallenge.token_hash == identity.sha256(token)))
    return row is not None and row.expires_at > utcnow()


async def complete_login(uow: UnitOfWork, token: str, code: str, ip: str, *, policy: ThrottlePolicy | None = None,
                         now: dt.datetime | None = None) -> tuple[User, str, str | None]:
    """The code step: (user, where to go, the provider's ID token of an SSO login) on success, the login recorded.
    A wrong code is a failed login attempt (committed, then ``Unauthenticated``); after the progressive delay it
    earned, ``Throttled``."""
    policy = policy or ThrottlePolicy()
    now = now or utcnow()
    row = await uow.session.scalar(select(LoginChallenge).where(LoginChallenge.token_hash == identity.sha256(token)))
    user = await uow.session.get(User, row.user_id) if row is not None else None
    if row is None or user is None or row.expires_at < now or not user.active:
        raise Unauthenticated(EXPIRED, expired=True)
    wait = await login_throttle.wait_seconds(uow, policy, user.username, ip, now)
    if wait:
        raise Throttled(f"Nhập sai nhiều lần. Vui lòng thử lại sau {wait} giây.", retry_after=wait)
    result = await verify_code(uow, user, code, now)
    if result in ("totp", "recovery"):
        target, sso_id_token = row.next_path, row.sso_id_token
        await uow.session.delete(row)
        via = {"via": "sso"} if sso_id_token else {}
        await identity.login_succeeded(uow, user, ip, now, factor=result, **via)
        return user, target, sso_id_token
    row.tries += 1
    expired = row.tries >= CHALLENGE_TRIES
    if expired:
        await uow.session.delete(row)
    uow.session.add(LoginAttempt(username=user.username, ip=ip[:64], success=False, at=now))
    await audit.record(uow, None, "login.failed", "user", user.id, ip=ip, username=user.username, reason=result)
    await uow.commit()
    if expired:
        raise Unauthenticated(EXPIRED, expired=True)
    raise Unauthenticated(REPLAYED_CODE if result == "replay" else WRONG_CODE)
