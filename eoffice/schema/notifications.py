"""Notifications (thông báo) kept per user, each user's choices of channel per kind and quiet hours for
e-mail, the e-mail outbox and the once-only deadline reminders. Service: ``eoffice.notifications``;
sending: ``eoffice.mail``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_read_at", "user_id", "read_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(String(1000))  # a Vietnamese sentence, for this reader
    link: Mapped[str] = mapped_column(String(300), default="")  # a page of this server ("/tasks/12")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    read_at: Mapped[dt.datetime | None] = mapped_column()

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text, "link": self.link,
                "created_at": self.created_at.isoformat(),
                "read_at": self.read_at.isoformat() if self.read_at else None}


class NotificationPref(Base):
    """A user's choice for one kind; no row: the kind's defaults (``eoffice.notifications.KINDS``)."""

    __tablename__ = "notification_prefs"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)
    push: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())  # Web Push, when subscribed


class NotificationQuiet(Base):
    """A user's quiet hours for e-mail (local time, minutes after midnight; start == end: none)."""

    __tablename__ = "notification_quiet"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    start_minute: Mapped[int] = mapped_column(Integer, default=0)
    end_minute: Mapped[int] = mapped_column(Integer, default=0)


class MailOutbox(Base):
    """One e-mail to send: kept until sent (and a while after, like the notifications), retried with backoff."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id", ondelete="SET NULL"))
    to_addr: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # not before (quiet hours, backoff)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class PushSubscription(Base):
    """One browser's Web Push subscription (``PushManager.subscribe``): where the push service takes messages
    for it and the keys its payloads are encrypted with (RFC 8291). Removed when the service answers 404/410."""

    __tablename__ = "push_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))  # the browser's P-256 public key, base64url
    auth: Mapped[str] = mapped_column(String(100))  # its 16-byte authentication secret, base64url
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ChannelOutbox(Base):
    """One Web Push message (``subscription_id``) or SMS (``phone``) to deliver: the e-mail outbox's twin, sent by
    the same loop (``eoffice.outbox``); ``payload`` is the JSON the channel sends."""

    __tablename__ = "channel_outbox"
    __table_args__ = (Index("ix_channel_outbox_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # "push" | "sms"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id", ondelete="SET NULL"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("push_subscriptions.id", ondelete="CASCADE"),
                                                        index=True)
    phone: Mapped[str] = mapped_column(String(30), default="")
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class TaskReminder(Base):
    """A deadline reminder already given (kind ``due``, ``overdue``, ``escalated``): each is given once per
    task and deadline (an extension gives a new deadline, hence new reminders)."""

    __tablename__ = "task_reminders"
    __table_args__ = (UniqueConstraint("task_id", "kind", "deadline"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    deadline: Mapped[str] = mapped_column(String(10))  # ISO date the reminder was about
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
