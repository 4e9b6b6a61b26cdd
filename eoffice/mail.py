"""E-mail of notifications: composed in Vietnamese (plain text and HTML), kept in a durable outbox
(``MailOutbox``, written in the transaction of the notification) and sent over SMTP by ``MailSender``.

Sending: the outbox's loop (claim, backoff, retries; ``eoffice.outbox.OutboxSender``, shared with Web Push
and SMS) hands each due row to ``MailSender.deliver``, which sends it with ``smtplib`` in a thread (never on
the event loop). A server that is down or refuses leaves the row in the outbox: nothing is dropped, however
long it takes. A row can be sent twice only if the process dies between the server's acceptance and the mark
(at-least-once).
"""

from __future__ import annotations

import html
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

import anyio

from eoffice.outbox import OutboxSender
from eoffice.schema.notifications import MailOutbox
from storage.db import Database

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


class MailSender(OutboxSender):
    """The e-mail outbox's background sender (``eoffice.outbox.OutboxSender``)."""

    model = MailOutbox
    name = "mail"
    retry_on = (OSError, smtplib.SMTPException, ValueError)  # refused, down, unreachable, bad address

    def __init__(self, db: Database, config: SmtpConfig, *, retry_base: float = 60.0, retry_max: float = 3600.0,
                 poll: float = 60.0) -> None:
        super().__init__(db, retry_base=retry_base, retry_max=retry_max, poll=poll)
        self.config = config

    async def deliver(self, row: MailOutbox) -> None:
        msg = build_message(self.config, row)
        await anyio.to_thread.run_sync(send_sync, self.config, msg)


__all__ = ["MailSender", "SmtpConfig", "build_message", "compose", "send_sync"]
