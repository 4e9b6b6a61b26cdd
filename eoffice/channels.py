"""Notifications that leave the server other than by e-mail (issue #21): Web Push to the browsers a user
subscribed, and SMS of urgent items (a hỏa tốc document, a meeting changed or cancelled) to a phone number.

Both are rows of ``ChannelOutbox``, written in the notification's transaction (``queue``) and delivered by
``ChannelSender``, the e-mail outbox's loop (``eoffice.outbox``: claim, retries with backoff, at-least-once).

Web Push (RFC 8030/8291/8292, with ``pywebpush``): the payload is encrypted for the browser (aes128gcm), so the push
service only carries it; the server signs each request with its VAPID key. That key pair is derived from the
server's secret (``storage.keys.key_for``, label ``vapid``), like the audit chain's key: every server process (and a
restored backup with the same secret) has the same one, nothing more to back up; a new secret means a new key, and
browsers must subscribe again. A subscription the push service says is gone (404/410) is removed with its pending
messages. Subscriptions are accepted only at the vendors' push services (https) and at hosts the agency lists
(``EOFFICE_PUSH_HOSTS``): otherwise any user could make the server POST to any address. Off unless
``EOFFICE_PUSH_ENABLED``: browsers' push services are the vendors' (Google, Mozilla, Apple), which closed agency
networks usually cannot reach.

SMS: a POST of ``{"to": phone, "message": text}`` in JSON to the agency's gateway (``EOFFICE_SMS_URL``) with
``Authorization: Bearer EOFFICE_SMS_TOKEN``; any 2xx is delivered, anything else is retried.

A confidential document's title goes into neither (as for e-mail): only that something waits on the server.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, select

from eoffice import audit
from eoffice.org import User
from eoffice.outbox import Gone, OutboxSender
from eoffice.schema.notifications import ChannelOutbox, PushSubscription
from storage import keys
from storage.db import Database, UnitOfWork, utcnow
from storage.errors import Invalid, NotFound

APP_NAME = "Văn phòng điện tử"
SECRET_TEXT = "Bạn có thông báo mới liên quan đến văn bản mật. Vui lòng đăng nhập hệ thống để xem."
SMS_LIMIT = 300  # characters of an SMS (a gateway splits longer ones; past this we cut)
PUSH_TTL = 24 * 3600  # seconds a push service keeps a message for a browser that is off
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class PushConfig:
    enabled: bool = False
    subject: str = "mailto:eoffice@localhost"  # the VAPID "sub": who the push service may contact
    timeout: float = 30.0
    hosts: tuple[str, ...] = ()  # push services besides the browsers' vendors' (EOFFICE_PUSH_HOSTS)


@dataclass(frozen=True)
class SmsConfig:
    url: str = ""  # "": SMS off
    token: str = ""
    timeout: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_key(db_url: Any) -> ec.EllipticCurvePrivateKey:
    """The server's VAPID private key (P-256), derived from its secret."""
    scalar = int.from_bytes(keys.key_for(db_url, "vapid"), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def vapid_public(db_url: Any) -> str:
    """The applicationServerKey browsers subscribe with: the uncompressed point, base64url."""
    point = (
        vapid_key(db_url)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return b64url(point)


# ---- subscriptions ------------------------------------------------------------------------------


# The browsers' vendors' push services (Chrome/Edge/Android, Firefox, Safari, old Edge): a subscription elsewhere
# would make the server POST to any address a user names (server-side request forgery into the agency's network)
VENDOR_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    ".push.services.mozilla.com",
    ".push.apple.com",
    ".notify.windows.com",
)


def _host_in(host: str, hosts: tuple[str, ...]) -> bool:
    return any(host == h or (h.startswith(".") and host.endswith(h)) for h in hosts)


def push_endpoint_allowed(endpoint: str, extra_hosts: tuple[str, ...] = ()) -> bool:
    """An https URL of a vendor's push service, or (http or https) of a host the agency listed."""
    try:
        url = urlsplit(endpoint)
        host = (url.hostname or "").lower()
    except ValueError:
        return False
    if not host or url.username or url.password:
        return False
    if _host_in(host, tuple(h.lower() for h in extra_hosts)):
        return url.scheme in ("https", "http")
    return url.scheme == "https" and url.port in (None, 443) and _host_in(host, VENDOR_PUSH_HOSTS)


def _check_subscription(endpoint: str, p256dh: str, auth: str, hosts: tuple[str, ...]) -> None:
    if len(endpoint) > 1000 or not push_endpoint_allowed(endpoint, hosts):
        raise Invalid("Địa chỉ nhận thông báo đẩy không thuộc dịch vụ thông báo đẩy được phép.", field="endpoint")
    try:
        point, secret = unb64url(p256dh), unb64url(auth)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise Invalid("Khóa của trình duyệt không hợp lệ.", field="keys") from None
    if len(secret) != 16:
        raise Invalid("Khóa xác thực của trình duyệt không hợp lệ.", field="keys")


async def subscribe(
    uow: UnitOfWork,
    user: User,
    endpoint: str,
    p256dh: str,
    auth: str,
    *,
    hosts: tuple[str, ...] = (),
    user_agent: str = "",
    ip: str = "",
) -> PushSubscription:
    """Keep a browser's subscription for the user (the same endpoint again: its keys and owner updated).
    ``hosts``: push services allowed besides the vendors' (``push_endpoint_allowed``)."""
    _check_subscription(endpoint, p256dh, auth, hosts)
    user_id = user.id
    row = await uow.session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    if row is None:
        row = PushSubscription(
            user_id=user_id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            user_agent=user_agent[:300],
            created_at=utcnow(),
        )
        uow.session.add(row)
    else:
        row.user_id, row.p256dh, row.auth, row.user_agent = user_id, p256dh, auth, user_agent[:300]
    await uow.session.flush()
    await audit.record(
        uow,
        user,
        "push.subscribe",
        "user",
        user_id,
        ip,
        subscription=row.id,
        service=_service(endpoint),
        user_agent=user_agent[:120],
    )
    return row


def _service(endpoint: str) -> str:
    """The push service's host (the endpoint itself is a capability: not written to the audit log)."""
    return endpoint.split("/")[2] if endpoint.count("/") >= 2 else ""


async def unsubscribe(uow: UnitOfWork, user: User, endpoint: str, *, ip: str = "") -> None:
    row = await uow.session.scalar(
        select(PushSubscription).where(PushSubscription.endpoint == endpoint, PushSubscription.user_id == user.id)
    )
    if row is None:
        raise NotFound("Trình duyệt này chưa đăng ký nhận thông báo đẩy.")
    await uow.session.execute(delete(ChannelOutbox).where(ChannelOutbox.subscription_id == row.id))
    await audit.record(
        uow, user, "push.unsubscribe", "user", user.id, ip, subscription=row.id, service=_service(endpoint)
    )
    await uow.session.delete(row)
    await uow.session.flush()


async def subscription_count(uow: UnitOfWork, user_id: int) -> int:
    return len(
        (await uow.session.scalars(select(PushSubscription.id).where(PushSubscription.user_id == user_id))).all()
    )


# ---- queueing (in the notification's transaction) -----------------------------------------------


def _wake(uow: UnitOfWork) -> None:
    wake = uow.db.consumers.get(ChannelSender.name)
    if wake is not None:
        uow.after_commit(lambda: wake([]))


async def queue_push(
    uow: UnitOfWork,
    user_id: int,
    notification_id: int | None,
    title: str,
    text: str,
    link: str,
    *,
    base_url: str = "",
    secret: bool = False,
) -> int:
    """One message per subscribed browser of the user; returns how many."""
    subs = (
        await uow.session.scalars(
            select(PushSubscription).where(PushSubscription.user_id == user_id).order_by(PushSubscription.id)
        )
    ).all()
    payload = json.dumps(
        {
            "id": notification_id,
            "title": title,
            "body": SECRET_TEXT if secret else text,
            "link": link,
            "url": base_url + link if link else base_url or "/",
        },
        ensure_ascii=False,
    )
    now = utcnow()
    for sub in subs:
        uow.session.add(
            ChannelOutbox(
                channel="push",
                user_id=user_id,
                notification_id=notification_id,
                subscription_id=sub.id,
                phone="",
                payload=payload,
                created_at=now,
                next_attempt_at=now,
                attempts=0,
                last_error="",
            )
        )
    if subs:
        _wake(uow)
    return len(subs)


def sms_text(text: str, link: str, *, base_url: str = "", secret: bool = False) -> str:
    body = SECRET_TEXT if secret else " ".join(text.split())
    tail = f" {base_url}{link}" if base_url and link else ""
    room = SMS_LIMIT - len(tail) - len("[VPĐT] ")
    return f"[VPĐT] {body if len(body) <= room else body[: room - 1] + '…'}{tail}"


async def queue_sms(
    uow: UnitOfWork,
    user_id: int,
    phone: str,
    notification_id: int | None,
    text: str,
    link: str,
    *,
    base_url: str = "",
    secret: bool = False,
) -> None:
    now = utcnow()
    payload = json.dumps({"text": sms_text(text, link, base_url=base_url, secret=secret)}, ensure_ascii=False)
    uow.session.add(
        ChannelOutbox(
            channel="sms",
            user_id=user_id,
            notification_id=notification_id,
            subscription_id=None,
            phone=phone[:30],
            payload=payload,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
            last_error="",
        )
    )
    _wake(uow)


# ---- delivery -----------------------------------------------------------------------------------


class DeliveryError(Exception):
    """The other end did not take the message (retried)."""


def _push_sync(config: PushConfig, key: ec.EllipticCurvePrivateKey, sub: PushSubscription, payload: str) -> None:
    info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
    try:
        webpush(
            info,
            payload,
            vapid_private_key=Vapid(private_key=key),
            vapid_claims={"sub": config.subject},
            content_encoding="aes128gcm",
            ttl=PUSH_TTL,
            timeout=config.timeout,
        )
    except WebPushException as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (404, 410):
            raise Gone(f"HTTP {status}: the push service no longer knows this subscription") from None
        raise DeliveryError(f"HTTP {status}: {exc.message}"[:300]) from None


def _sms_sync(config: SmsConfig, phone: str, message: str) -> None:
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    response = requests.post(
        config.url, json={"to": phone, "message": message}, headers=headers, timeout=config.timeout
    )
    if not response.ok:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")


class ChannelSender(OutboxSender):
    """Delivers the Web Push and SMS outbox."""

    model = ChannelOutbox
    name = "channels"
    retry_on = (OSError, DeliveryError)  # requests' errors are OSErrors

    def __init__(
        self,
        db: Database,
        push: PushConfig,
        sms: SmsConfig,
        *,
        retry_base: float = 60.0,
        retry_max: float = 3600.0,
        poll: float = 60.0,
    ) -> None:
        super().__init__(db, retry_base=retry_base, retry_max=retry_max, poll=poll)
        self.push, self.sms = push, sms

    async def deliver(self, row: ChannelOutbox) -> None:
        if row.channel == "push":
            await self._deliver_push(row)
        elif row.channel == "sms":
            await self._deliver_sms(row)
        else:
            raise Gone(f"unknown channel {row.channel!r}")

    async def _deliver_push(self, row: ChannelOutbox) -> None:
        async with self.db.uow(readonly=True) as uow:
            sub = await uow.session.get(PushSubscription, row.subscription_id)
        if sub is None:
            raise Gone("the subscription was removed")
        if not self.push.enabled:
            raise Gone("Web Push is turned off (EOFFICE_PUSH_ENABLED)")
        try:
            await anyio.to_thread.run_sync(_push_sync, self.push, vapid_key(self.db.url), sub, row.payload)
        except Gone:
            async with self.db.uow() as uow:  # the subscription and whatever else waits for it; this row is kept
                await uow.session.execute(
                    delete(ChannelOutbox).where(ChannelOutbox.subscription_id == sub.id, ChannelOutbox.id != row.id)
                )
                fresh = await uow.session.get(ChannelOutbox, row.id)
                if fresh is not None:
                    fresh.subscription_id = None
                await uow.session.flush()
                await uow.session.execute(delete(PushSubscription).where(PushSubscription.id == sub.id))
                await uow.commit()
            raise

    async def _deliver_sms(self, row: ChannelOutbox) -> None:
        if not self.sms.enabled:
            raise Gone("no SMS gateway (EOFFICE_SMS_URL)")
        await anyio.to_thread.run_sync(_sms_sync, self.sms, row.phone, json.loads(row.payload)["text"])


__all__ = [
    "ChannelSender",
    "PushConfig",
    "SmsConfig",
    "queue_push",
    "queue_sms",
    "subscribe",
    "unsubscribe",
    "vapid_key",
    "vapid_public",
]
