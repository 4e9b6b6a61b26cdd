"""OpenID Connect login, the accounts half: pending logins (state, nonce, PKCE verifier), which local account an
ID token stands for, creation at first login, and whether the provider's own second factor counts.
The protocol half is ``eoffice.oidc_client``; the pages are ``web.routes.sso``.

- A pending login (``OidcLogin``) is bound to the browser that started it (a random token in a cookie; only its
  sha256 is stored), used once (deleted when the provider answers, whatever the answer) and expires after
  ``PENDING_MINUTES``. The ``state`` is looked up by its sha256, so a stolen database row gives no usable state.
- Mapping (``SsoPolicy.match``): ``username`` compares the claim ``SsoPolicy.claim`` (``preferred_username``
  by default; any claim the provider sends, ``sub`` or an employee number) with the local username; ``email``
  compares the ``email`` claim with the accounts' e-mail (refused when the provider says it is not verified, and
  when two accounts share it).
- Just-in-time creation (``SsoPolicy.jit_unit``, a unit code): an unknown person gets an account in that unit
  with ``jit_role``, the provider's name and e-mail, and an unknown random password (they log in through SSO).
  Without it, an unknown person is refused.
- Second factor (``provider_mfa``): an ``amr`` value in ``mfa_amr`` or an ``acr`` in ``mfa_acr`` means the
  provider did it; otherwise our own TOTP applies as for a password login (``eoffice.two_factor``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from eoffice import identity
from eoffice.org import Role, Unit, User
from eoffice.schema.identity import OidcLogin
from storage.db import UnitOfWork, utcnow
from storage.errors import Unauthenticated

PENDING_MINUTES = 10
STATE_REFUSED = ("Phiên đăng nhập một cửa (SSO) không hợp lệ hoặc đã được sử dụng (mã state không khớp). "
                 "Vui lòng bấm đăng nhập lại.")
EXPIRED = "Phiên đăng nhập một cửa (SSO) đã hết hạn. Vui lòng bấm đăng nhập lại."
UNKNOWN_ACCOUNT = ("Tài khoản «{name}» của hệ thống đăng nhập một cửa chưa được cấp quyền sử dụng hệ thống này. "
                   "Vui lòng liên hệ quản trị hệ thống.")
INACTIVE = "Tài khoản đã bị khóa. Vui lòng liên hệ quản trị hệ thống."


@dataclass(frozen=True)
class SsoPolicy:
    match: str = "username"  # or "email"
    claim: str = "preferred_username"
    jit_unit: str = ""  # unit code; "" : no creation
    jit_role: str = Role.SPECIALIST.value
    mfa_amr: tuple[str, ...] = ()
    mfa_acr: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> SsoPolicy:
        return cls(match=settings.oidc_match, claim=settings.oidc_claim, jit_unit=settings.oidc_jit_unit,
                   jit_role=settings.oidc_jit_role, mfa_amr=tuple(settings.oidc_mfa_amr),
                   mfa_acr=tuple(settings.oidc_mfa_acr))


@dataclass(frozen=True)
class Pending:
    """What ``begin`` made: the browser's cookie token and the authorization request's secrets."""

    browser: str
    state: str
    nonce: str
    verifier: str
    next_path: str = "/"


def _refused(message: str, reason: str, **details: object) -> Unauthenticated:
    return Unauthenticated(message, reason=reason, **details)


async def begin(uow: UnitOfWork, next_path: str) -> Pending:
    """A new pending login (expired ones are removed on the way)."""
    now = utcnow()
    await uow.session.execute(delete(OidcLogin).where(OidcLogin.expires_at < now))
    pending = Pending(browser=secrets.token_urlsafe(32), state=secrets.token_urlsafe(32),
                      nonce=secrets.token_urlsafe(32), verifier=secrets.token_urlsafe(64), next_path=next_path[:500])
    uow.session.add(OidcLogin(browser_hash=identity.sha256(pending.browser), state_hash=identity.sha256(pending.state),
                              nonce=pending.nonce, code_verifier=pending.verifier, next_path=pending.next_path,
                              expires_at=now + dt.timedelta(minutes=PENDING_MINUTES)))
    return pending


async def take(uow: UnitOfWork, browser: str | None, state: str) -> Pending:
    """The pending login the provider's answer (``state``) belongs to, used up: it must have been started by this
    browser (``browser``, its cookie) and not be expired. The row is deleted whatever the outcome; the caller
    commits before answering."""
    row = await uow.session.scalar(select(OidcLogin).where(OidcLogin.state_hash == identity.sha256(state or "")))
    if row is None:
        raise _refused(STATE_REFUSED, "state_unknown")
    claimed = await uow.session.execute(delete(OidcLogin).where(OidcLogin.id == row.id))
    if not claimed.rowcount:  # type: ignore[attr-defined]  # another request took it first
        raise _refused(STATE_REFUSED, "state_used")
    if not browser or not secrets.compare_digest(row.browser_hash, identity.sha256(browser)):
        raise _refused(STATE_REFUSED, "state_other_browser")
    if row.expires_at < utcnow():
        raise _refused(EXPIRED, "state_expired")
    return Pending(browser=browser, state=state, nonce=row.nonce, verifier=row.code_verifier,
                   next_path=row.next_path)


def provider_mfa(claims: dict[str, Any], policy: SsoPolicy) -> bool:
    """Whether the provider asserts a second factor this login, by the configured ``amr``/``acr`` values."""
    amr = claims.get("amr")
    amr_values = {str(v) for v in amr} if isinstance(amr, list) else set()
    acr = claims.get("acr")
    return bool(amr_values & set(policy.mfa_amr)) or (isinstance(acr, str) and acr in policy.mfa_acr)


def _claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    return str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _local_name(value: str) -> str:
    """A username our rules accept, made from a claim (``Nguyen.Van.A@x`` -> ``nguyen.van.a``)."""
    value = value.split("@", 1)[0].strip().lower()
    return "".join(ch for ch in value if ch.isascii() and (ch.isalnum() or ch in "._-"))[:80]


async def account_for(uow: UnitOfWork, claims: dict[str, Any], policy: SsoPolicy) -> tuple[User, bool]:
    """(the local account the validated ``claims`` stand for, whether it was just created)."""
    email = _claim(claims, "email").lower()
    if policy.match == "email":
        if not email:
            raise _refused(UNKNOWN_ACCOUNT.format(name=_claim(claims, "sub")), "no_email_claim")
        if claims.get("email_verified") is False:
            raise _refused("Địa chỉ e-mail của tài khoản đăng nhập một cửa chưa được xác minh. Vui lòng liên hệ "
                           "quản trị hệ thống.", "email_unverified")
        found = (await uow.session.scalars(select(User).where(func.lower(User.email) == email).limit(2))).all()
        if len(found) > 1:
            raise _refused(f"Có nhiều tài khoản dùng chung địa chỉ e-mail «{email}». Vui lòng liên hệ quản trị hệ "
                           "thống.", "email_ambiguous")
        user = found[0] if found else None
        wanted = _local_name(_claim(claims, "preferred_username") or email)
        shown = email
    else:
        shown = _claim(claims, policy.claim)
        wanted = shown.lower()
        if not wanted:
            raise _refused(UNKNOWN_ACCOUNT.format(name=_claim(claims, "sub")), f"no_claim:{policy.claim}")
        user = await uow.session.scalar(select(User).where(User.username == wanted))
    if user is None:
        if not policy.jit_unit:
            raise _refused(UNKNOWN_ACCOUNT.format(name=shown), "unknown_user", username=shown)
        return await _create(uow, claims, policy, wanted, email), True
    if not user.active:
        raise _refused(INACTIVE, "inactive", username=user.username)
    return user, False


async def _create(uow: UnitOfWork, claims: dict[str, Any], policy: SsoPolicy, username: str, email: str) -> User:
    unit_id = await uow.session.scalar(select(Unit.id).where(Unit.code == policy.jit_unit))
    if unit_id is None:
        raise _refused("Chưa cấu hình đúng đơn vị cho tài khoản tạo tự động khi đăng nhập một cửa "
                       f"(mã đơn vị «{policy.jit_unit}» không tồn tại). Vui lòng liên hệ quản trị hệ thống.",
                       "jit_unit_missing")
    full_name = _claim(claims, "name") or " ".join(
        p for p in (_claim(claims, "family_name"), _claim(claims, "given_name")) if p) or username
    # nobody knows this password: the account logs in through the provider (an administrator may set one)
    password = "Sso-" + secrets.token_urlsafe(24) + "-9"
    return await identity.create_user(uow, None, username=username, full_name=full_name, password=password,
                                      roles=[policy.jit_role], unit_id=unit_id, email=email)
