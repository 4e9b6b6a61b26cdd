"""Background jobs that need an administrator's eye (issue 17): text extractions, PDF renditions and OCR of
attachments (``ingest_jobs``) that failed or are waiting to be retried after an outage, and e-mails of the outbox
(``mail_outbox``) that could not be sent yet. Listed with their error, attempts and next retry on /admin/jobs and by
``eoffice jobs list``; ``retry`` runs one (or all) again now, audited. A job is named ``ingest-<id>`` or
``mail-<id>``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update

from eoffice import audit
from eoffice.identity import require_admin
from eoffice.ingest import RETRY_CONSUMER
from eoffice.org import User
from eoffice.schema.documents import Attachment, Document, IngestJob, IngestStatus
from eoffice.schema.notifications import MailOutbox
from storage.db import UnitOfWork, utcnow
from storage.errors import Invalid, NotFound

KINDS = ("ingest", "mail")
MAIL_CONSUMER = "mail"  # eoffice.mail.MailSender's wake-up among the database's consumers


@dataclass(frozen=True)
class JobView:
    key: str  # ingest-12, mail-5
    kind: str
    label: str  # what the job does, in Vietnamese
    subject: str  # what it is about (never a confidential document's file name)
    link: str  # where to see it ("" for none)
    status: str  # failed | retrying
    error: str
    attempts: int
    next_attempt_at: dt.datetime | None
    updated_at: dt.datetime | None

    @property
    def status_label(self) -> str:
        return "Lỗi, chờ chạy lại thủ công" if self.status == "failed" else "Đang chờ tự thử lại"


def parse_key(key: str) -> tuple[str, int]:
    kind, _, number = key.strip().partition("-")
    if kind not in KINDS or not (number.isascii() and number.isdigit()) or not 0 < int(number) < 2**31:
        raise Invalid(f"Mã tác vụ «{key}» không hợp lệ (dạng ingest-12 hoặc mail-5).")
    return kind, int(number)


async def problem_jobs(uow: UnitOfWork, actor: User | None) -> list[JobView]:
    """Failed jobs and jobs waiting for a retry, newest first (administrators; ``None``: the command line)."""
    require_admin(actor)
    s = uow.session
    views: list[JobView] = []
    rows = (
        (
            await s.execute(
                select(IngestJob, Attachment.filename, Attachment.is_pdf, Document.confidentiality)
                .join(Attachment, Attachment.id == IngestJob.attachment_id)
                .join(Document, Document.id == IngestJob.document_id)
                .where(
                    (IngestJob.status == IngestStatus.FAILED)
                    | ((IngestJob.status == IngestStatus.QUEUED) & (IngestJob.attempts > 0))
                )
                .order_by(IngestJob.updated_at.desc())
                .limit(500)
            )
        )
        .tuples()
        .all()
    )
    for job, filename, is_pdf, confidentiality in rows:
        doc = Document(confidentiality=confidentiality)
        name = f"tệp #{job.attachment_id}" if doc.confidential else f"tệp «{filename}»"
        views.append(
            JobView(
                f"ingest-{job.id}",
                "ingest",
                "Trích xuất nội dung PDF" if is_pdf else "Chuyển sang PDF (LibreOffice / OCR) và trích xuất nội dung",
                f"Văn bản #{job.document_id}, {name}",
                f"/documents/{job.document_id}",
                "failed" if job.status == IngestStatus.FAILED else "retrying",
                job.error,
                job.attempts,
                job.next_attempt_at,
                job.updated_at,
            )
        )
    mails = (
        await s.scalars(
            select(MailOutbox)
            .where(MailOutbox.sent_at.is_(None), MailOutbox.attempts > 0)
            .order_by(MailOutbox.next_attempt_at)
            .limit(500)
        )
    ).all()
    for mail in mails:
        views.append(
            JobView(
                f"mail-{mail.id}",
                "mail",
                "Gửi thư điện tử thông báo",
                f"Thư tới {mail.to_addr}",
                "",
                "retrying",
                mail.last_error,
                mail.attempts,
                mail.next_attempt_at,
                None,
            )
        )
    return views


async def retry(uow: UnitOfWork, actor: User | None, key: str | None, ip: str = "") -> int:
    """Run job ``key`` (None: every listed job) again now; the number of jobs. Audited as ``job.retry``."""
    require_admin(actor)
    s, now = uow.session, utcnow()
    ingest_ids: list[int] = []
    mail_ids: list[int] = []
    if key is None:
        listed = await problem_jobs(uow, actor)
        ingest_ids = [parse_key(j.key)[1] for j in listed if j.kind == "ingest"]
        mail_ids = [parse_key(j.key)[1] for j in listed if j.kind == "mail"]
    else:
        kind, number = parse_key(key)
        row = await s.get(IngestJob if kind == "ingest" else MailOutbox, number)
        if (
            row is None
            or (isinstance(row, MailOutbox) and row.sent_at is not None)
            or (isinstance(row, IngestJob) and row.status in (IngestStatus.DONE, IngestStatus.RUNNING))
        ):
            raise NotFound(f"Không có tác vụ lỗi hoặc đang chờ mã «{key}».")
        (ingest_ids if kind == "ingest" else mail_ids).append(number)
    if ingest_ids:
        await s.execute(
            update(IngestJob)
            .where(IngestJob.id.in_(ingest_ids))
            .values(status=IngestStatus.QUEUED, attempts=0, progress=0, next_attempt_at=now, updated_at=now)
        )
    if mail_ids:
        await s.execute(update(MailOutbox).where(MailOutbox.id.in_(mail_ids)).values(next_attempt_at=now))
    count = len(ingest_ids) + len(mail_ids)
    await audit.record(
        uow,
        actor,
        "job.retry",
        "job",
        key or "all",
        ip=ip,
        count=count,
        jobs=[f"ingest-{i}" for i in ingest_ids] + [f"mail-{i}" for i in mail_ids],
    )
    db = uow.db

    def wake() -> None:  # this process's runners look at once; the others within their poll interval
        for name in ((RETRY_CONSUMER,) if ingest_ids else ()) + ((MAIL_CONSUMER,) if mail_ids else ()):
            consumer = db.consumers.get(name)
            if consumer is not None:
                consumer([])

    uow.after_commit(wake)
    return count


__all__ = ["JobView", "parse_key", "problem_jobs", "retry"]
