"""The background workers of one app: created, started and stopped in one place, the lifespan of
``web.app.create_app``. The workers themselves belong to their domains: ``meetings.polls_live.PollRunner``
(coalesced poll progress events, countdowns that close polls), ``meetings.polls_live.CastBatcher`` (the group commit
of votes, telling the runner about them), ``meetings.consultations_live.ConsultationRunner`` (closes written
consultations at their deadline), ``eoffice.ingest.IngestRunner`` (text extraction of registered documents),
``eoffice.notifications.NotificationWorker`` (deadline reminders, escalation, the notifications' retention),
``meetings.documents.Prerenderer`` (first pages of meeting documents rendered before the tablets ask), and where the
settings ask for them ``eoffice.digest.DigestScheduler`` (the daily digest), ``eoffice.upload_limits.UploadCleaner``
(uploads never attached) and ``eoffice.mail.MailSender`` (the e-mail outbox, when an SMTP server is configured),
``eoffice.channels.ChannelSender`` (Web Push and SMS) and ``eoffice.directory_sync.DirectorySync`` (units and
accounts kept in step with the LDAP directory, when one is configured with a sync interval). Routes reach them with
``workers(app)``; nothing creates a worker on first use, so there is exactly one of each per app, bound to the
app's database."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.applications import Starlette

from eoffice import notifications
from eoffice.accounts import Revoked
from eoffice.channels import ChannelSender, PushConfig, SmsConfig
from eoffice.digest import DigestScheduler
from eoffice.directory import DirectoryConfig
from eoffice.directory_sync import Closer, DirectorySync
from eoffice.exchange_transport import ExchangeSender
from eoffice.ingest import IngestRunner
from eoffice.job_retry import RetryPolicy
from eoffice.mail import MailSender, SmtpConfig
from eoffice.upload_limits import UploadCleaner
from meetings import notices
from meetings.consultations_live import ConsultationRunner
from meetings.documents import Prerenderer
from meetings.polls_live import CastBatcher, PollRunner
from storage.blobs import BlobStore
from storage.db import Database
from storage.settings import Settings
from web.hub import Hub

log = logging.getLogger(__name__)


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, starttls=settings.smtp_starttls,
                      user=settings.smtp_user, password=settings.smtp_password,
                      sender=settings.smtp_from or f"eoffice@{settings.smtp_host or 'localhost'}")


def notification_config(settings: Settings) -> notifications.Config:
    return notifications.Config(email=bool(settings.smtp_host), base_url=settings.public_url,
                                push=settings.push_enabled, sms=bool(settings.sms_url))


def push_config(settings: Settings) -> PushConfig:
    subject = settings.push_subject or (f"mailto:{settings.smtp_from}" if settings.smtp_from else "") \
        or settings.public_url or "mailto:eoffice@localhost"
    return PushConfig(enabled=settings.push_enabled, subject=subject, hosts=settings.push_hosts)


def channel_sender(db: Database, settings: Settings) -> ChannelSender | None:
    """The Web Push and SMS outbox's sender, when either is configured."""
    if not (settings.push_enabled or settings.sms_url):
        return None
    return ChannelSender(db, push_config(settings), SmsConfig(url=settings.sms_url, token=settings.sms_token),
                         retry_base=settings.mail_retry_seconds)


def exchange_sender(db: Database, blobs: BlobStore, settings: Settings) -> ExchangeSender:
    """The exchange outbox's sender through the configured platform (``direct``: installation to installation)."""
    if settings.exchange_platform != "direct":
        raise ValueError(f"EOFFICE_EXCHANGE_PLATFORM={settings.exchange_platform!r}: only «direct» is implemented")
    return ExchangeSender(db, blobs, retry_base=settings.exchange_retry_seconds)


def wire_notifications(db: Database, settings: Settings) -> None:
    """Every unit of work of ``db`` notifies the people its events concern (the server and the command line)."""
    notifications.install(db, notification_config(settings), handlers=notices.HANDLERS)


@dataclass
class Workers:
    poll_runner: PollRunner
    cast_batcher: CastBatcher
    ingest_runner: IngestRunner
    digest_scheduler: DigestScheduler | None = None  # the daily digest at that local hour; one process sends it
    upload_cleaner: UploadCleaner | None = None  # uploads never attached, removed after the configured hours
    notification_worker: notifications.NotificationWorker | None = None  # deadlines, escalation, retention
    mail_sender: MailSender | None = None  # the e-mail outbox, when an SMTP server is configured
    channel_sender: ChannelSender | None = None  # Web Push and SMS, when either is configured
    consultation_runner: ConsultationRunner | None = None  # closes written consultations at their deadline
    prerenderer: Prerenderer | None = None  # first pages of meeting documents, before the tablets ask (#22)
    directory_sync: DirectorySync | None = None  # the LDAP directory's units and accounts, every so many seconds
    exchange_sender: ExchangeSender | None = None  # packages to other installations (#16)

    @classmethod
    def create(cls, db: Database, blobs: BlobStore, settings: Settings, *, close: Closer | None = None) -> Workers:
        """``close``: closes the live sockets of an account a directory sync deactivated (the hub's)."""
        runner = PollRunner(db)
        ldap = DirectoryConfig.from_settings(settings)
        hour, keep = settings.digest_hour, settings.upload_keep_hours
        return cls(poll_runner=runner, cast_batcher=CastBatcher(db, runner=runner),
                   ingest_runner=IngestRunner(db, blobs, retry=RetryPolicy(base=settings.job_retry_seconds)),
                   digest_scheduler=DigestScheduler(db, hour) if hour is not None else None,
                   upload_cleaner=UploadCleaner(db, blobs, keep) if keep > 0 else None,
                   notification_worker=notifications.NotificationWorker(
                       db, notification_config(settings), keep_days=settings.notify_keep_days,
                       interval=settings.notify_check_seconds, due_days=settings.notify_due_days,
                       escalate_days=settings.notify_escalate_days),
                   mail_sender=MailSender(db, smtp_config(settings), retry_base=settings.mail_retry_seconds)
                   if settings.smtp_host else None,
                   channel_sender=channel_sender(db, settings),
                   consultation_runner=ConsultationRunner(db, notification_config(settings),
                                                          remind_hours=settings.consultation_remind_hours),
                   prerenderer=Prerenderer(db, blobs, pages=settings.prerender_pages)
                   if settings.prerender_pages > 0 else None,
                   directory_sync=DirectorySync(db, ldap, settings.ldap_sync_seconds, close)
                   if ldap is not None and settings.ldap_sync_seconds > 0 else None,
                   exchange_sender=exchange_sender(db, blobs, settings))

    async def start(self) -> None:
        """Close polls whose countdown ran out while no process was running, resume the others'
        countdowns, and re-queue text extraction a previous process left unfinished (a crash, a restart)."""
        self.poll_runner.ensure()
        if self.consultation_runner is not None:
            self.consultation_runner.ensure()  # closes consultations whose deadline passed while down
        for periodic in (self.digest_scheduler, self.upload_cleaner, self.notification_worker, self.mail_sender,
                         self.channel_sender, self.directory_sync, self.exchange_sender):
            if periodic is not None:
                periodic.start()
        self.ingest_runner.start()  # retries of jobs an outage interrupted, and those an administrator retried
        count = await self.ingest_runner.recover()
        if count:
            log.info("re-queued %d unfinished ingest jobs", count)

    async def stop(self) -> None:
        await self.cast_batcher.drain()  # votes queued by requests that just finished (or were cut off) are committed
        for periodic in (self.exchange_sender, self.directory_sync, self.channel_sender, self.mail_sender,
                         self.notification_worker, self.upload_cleaner, self.digest_scheduler):
            if periodic is not None:
                await periodic.stop()
        await self.poll_runner.stop()
        if self.consultation_runner is not None:
            await self.consultation_runner.stop()
        await self.ingest_runner.stop()
        if self.prerenderer is not None:
            await self.prerenderer.stop()


async def close_revoked(hub: Hub, reason: str, revoked: Revoked) -> None:
    """Close, in every process, the live sockets whose credentials ``revoked`` ended."""
    await hub.close_user(revoked.user_id, reason, keep=revoked.keep,
                         only=list(revoked.only) if revoked.only is not None else None)


def workers(app: Starlette) -> Workers:
    """The app's workers (set by the lifespan before any request or WebSocket is served)."""
    w: Workers = app.state.workers
    return w
