"""E-mail of notifications: composed in Vietnamese (plain text and HTML), kept in a durable outbox
(``MailOutbox``, written in the transaction of the notification) and sent over SMTP by ``MailSender``.

Sending: a batch of due rows is claimed first (their ``next_attempt_at`` moved a lease ahead, under
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two server processes never send the same row; each is then
sent with ``smtplib`` in a thread (never on the event loop) and marked sent, or its attempt counted and
retried after an exponential backoff (``retry_base`` doubled per attempt, at most ``retry_max``). A server
that is down or refuses leaves the row in the outbox: nothing is dropped, however long it takes. A row can be
sent twice only if the process dies between the server's acceptance and the mark (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

import anyio
from sqlalchemy import select

from eoffice.schema.notifications import MailOutbox
from storage.background import BackgroundTask
from storage.db import Database, utcnow

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)  # a claimed row is left alone this long by other processes
BATCH = 20
APP_NAME = "Văn phòng điện tử"


@dataclass(frozen=True)
class SmtpConfig:
    host: str = ""  # "": e-mail off
    port: int = 587
    starttls: bool = True
    user: str = ""
    password: str = ""
    sender: str = ""  # the From address
    timeout: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


def compose(full_name: str, kind_label: str, text: str, url: str, *, secret: bool = False) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of one notification's e-mail. ``secret``: about a confidential document,
    so neither the subject nor the body repeats the sentence (its title): only that something waits."""
    if secret:
        subject = f"[{APP_NAME}] Thông báo mới về văn bản mật"
        line = ("Bạn có một thông báo mới liên quan đến văn bản mật. Vì lý do bảo mật, nội dung không gửi qua "
                "thư điện tử; vui lòng đăng nhập hệ thống để xem.")
    else:
        subject = f"[{APP_NAME}] {text}"
        line = text
    subject = " ".join(subject.split())
    if len(subject) > 200:
        subject = subject[:199] + "…"
    link = f"\nXem chi tiết: {url}\n" if url else "\n"
    plain = (f"Kính gửi {full_name},\n\n{line}\n{link}\n"
             f"—\nThư gửi tự động từ {APP_NAME} ({kind_label}). Bạn có thể đổi cách nhận thông báo trong "
             f"trang Tài khoản.\n")
    a = f'<p><a href="{html.escape(url)}">Xem chi tiết</a></p>' if url else ""
    body = (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"></head><body>'
            f"<p>Kính gửi {html.escape(full_name)},</p><p>{html.escape(line)}</p>{a}"
            f'<p style="color:#666;font-size:small">Thư gửi tự động từ {APP_NAME} ({html.escape(kind_label)}). '
            f"Bạn có thể đổi cách nhận thông báo trong trang Tài khoản.</p></body></html>")
    return subject, plain, body


def build_message(config: SmtpConfig, row: MailOutbox) -> EmailMessage:
    msg = EmailMessage()  # the default policy: UTF-8 headers encoded as RFC 2047, bodies as needed
    msg["Subject"] = row.subject
    msg["From"] = formataddr((APP_NAME, config.sender))
    msg["To"] = row.to_addr
    msg["Message-ID"] = make_msgid(idstring=f"outbox-{row.id}")
    msg.set_content(row.body_text)
    msg.add_alternative(row.body_html, subtype="html")
    return msg


def send_sync(config: SmtpConfig, msg: EmailMessage) -> None:
    """One message over SMTP (STARTTLS and login as configured); raises what the server or the network says."""
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.user:
            smtp.login(config.user, config.password)
        smtp.send_message(msg)


class MailSender:
    """The outbox's background sender: woken after a commit that queued mail, and every ``poll`` seconds."""

    def __init__(self, db: Database, config: SmtpConfig, *, retry_base: float = 60.0, retry_max: float = 3600.0,
                 poll: float = 60.0) -> None:
        self.db, self.config = db, config
        self.retry_base, self.retry_max, self.poll = retry_base, retry_max, poll
        self._task = BackgroundTask("mail-sender")
        self._wake = asyncio.Event()

    def start(self) -> None:
        self.db.consumers["mail"] = lambda _ids: self._wake.set()
        self._task.ensure(self._run)

    async def stop(self) -> None:
        self.db.consumers.pop("mail", None)
        await self._task.stop()

    def backoff(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=min(self.retry_base * 2 ** max(attempts - 1, 0), self.retry_max))

    async def _claim(self, now: dt.datetime) -> list[MailOutbox]:
        async with self.db.uow() as uow:
            q = (select(MailOutbox).where(MailOutbox.sent_at.is_(None), MailOutbox.next_attempt_at <= now)
                 .order_by(MailOutbox.next_attempt_at, MailOutbox.id).limit(BATCH))
            if uow.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = list((await uow.session.scalars(q)).all())
            for row in rows:
                row.next_attempt_at = now + LEASE
            await uow.commit()
        return rows

    async def send_due(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Send what is due at ``now``; returns (sent, failed)."""
        now = now or utcnow()
        sent = failed = 0
        for row in await self._claim(now):
            error = ""
            try:
                msg = build_message(self.config, row)
                await anyio.to_thread.run_sync(send_sync, self.config, msg)
            except (OSError, smtplib.SMTPException, ValueError) as exc:  # refused, down, unreachable, bad address
                error = f"{type(exc).__name__}: {exc}"[:500]
            async with self.db.uow() as uow:
                fresh = await uow.session.get(MailOutbox, row.id)
                if fresh is not None:
                    if error:
                        fresh.attempts += 1
                        fresh.last_error = error
                        fresh.next_attempt_at = now + self.backoff(fresh.attempts)
                    else:
                        fresh.attempts += 1
                        fresh.sent_at, fresh.last_error = utcnow(), ""
                    await uow.commit()
            if error:
                failed += 1
                log.warning("mail %d to %s not sent (attempt %d): %s", row.id, row.to_addr, row.attempts + 1, error)
            else:
                sent += 1
        return sent, failed

    async def next_due(self) -> dt.datetime | None:
        async with self.db.uow(readonly=True) as uow:
            at: dt.datetime | None = await uow.session.scalar(
                select(MailOutbox.next_attempt_at).where(MailOutbox.sent_at.is_(None))
                .order_by(MailOutbox.next_attempt_at).limit(1))
        return at

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = self.poll
            try:
                await self.send_due()
                due = await self.next_due()
                if due is not None:
                    wait = min(self.poll, max((due - utcnow()).total_seconds(), 0.5))
            except Exception:
                log.exception("mail sender failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)


__all__ = ["MailSender", "SmtpConfig", "build_message", "compose", "send_sync"]
