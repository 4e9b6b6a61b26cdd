"""E-mail of notifications against a real SMTP server in this process (aiosmtpd): a task assigned arrives with
its Vietnamese subject; a server that refuses and then accepts gets the message once; a server that is down
leaves it in the outbox. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from eoffice import notifications, tasks
from eoffice.mail import MailSender, SmtpConfig
from eoffice.notifications import Config
from eoffice.org import User
from eoffice.schema.notifications import MailOutbox
from eoffice.tasks import Assignee
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from tests.conftest import free_port
from tests.eoffice.conftest import Org
from tests.eoffice.test_notifications import registered, today


@dataclass
class Inbox:
    """What the SMTP server received; ``refuse``: how many DATA commands to answer 451 first."""

    refuse: int = 0
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    refused: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd calls it by this name
        if self.refused < self.refuse:
            self.refused += 1
            return "451 4.3.0 Máy chủ bận, thử lại sau"
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append(msg)
        return "250 2.0.0 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def sender(db: Database, port: int) -> MailSender:
    return MailSender(db, SmtpConfig(host="127.0.0.1", port=port, starttls=False, sender="vpdt@quangninh.gov.vn",
                                     timeout=10), retry_base=60)


async def assign_task(db: Database, org: Org, blobs: BlobStore) -> int:
    """The clerk submits, the leader assigns the specialist (who has an e-mail address): returns the task id."""
    notifications.install(db, Config(email=True, base_url="https://vpdt.quangninh.gov.vn"))
    async with db.uow() as uow:
        user = await uow.session.get(User, org["chuyenvien"].id)
        assert user is not None
        user.email = "ha.pt@quangninh.gov.vn"
        await uow.commit()
    doc_id = await registered(db, org, blobs)
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    async with db.uow() as uow:
        _, (task,) = await tasks.direct(uow, org["lanhdao"], doc_id, text="Chị Hà chủ trì, báo cáo trước hạn.",
                                        main=Assignee(user_id=org["chuyenvien"].id),
                                        deadline=today() + dt.timedelta(days=7))
        await uow.commit()
    return task.id


async def outbox(db: Database) -> list[MailOutbox]:
    async with db.uow() as uow:
        return list((await uow.session.scalars(select(MailOutbox).order_by(MailOutbox.id))).all())


async def test_task_assigned_arrives_with_its_vietnamese_subject(db: Database, org: Org, blobs: BlobStore,
                                                                 inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    task_id = await assign_task(db, org, blobs)
    assert await sender(db, port).send_due() == (1, 0)
    (msg,) = box.messages
    deadline = f"{today() + dt.timedelta(days=7):%d/%m/%Y}"
    sentence = (f"Bạn được Trần Văn Hùng giao chủ trì xử lý «Công văn về việc triển khai chính quyền điện tử "
                f"(lần 1)», hạn {deadline}.")
    assert msg["Subject"] == f"[Văn phòng điện tử] {sentence}"
    assert msg["To"] == "ha.pt@quangninh.gov.vn" and "vpdt@quangninh.gov.vn" in msg["From"]
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert "Kính gửi Phạm Thu Hà" in plain.get_content() and sentence in plain.get_content()
    assert f"https://vpdt.quangninh.gov.vn/tasks/{task_id}" in plain.get_content()
    assert f'href="https://vpdt.quangninh.gov.vn/tasks/{task_id}"' in html.get_content()
    (row,) = await outbox(db)
    assert row.sent_at is not None and row.attempts == 1
    assert await sender(db, port).send_due() == (0, 0)  # sent once
    assert len(box.messages) == 1


async def test_refused_then_accepted_is_retried_and_delivered_once(db: Database, org: Org, blobs: BlobStore,
                                                                   inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    box.refuse = 1
    await assign_task(db, org, blobs)
    mailer = sender(db, port)
    assert await mailer.send_due() == (0, 1)
    (row,) = await outbox(db)
    assert row.sent_at is None and row.attempts == 1 and "451" in row.last_error
    assert row.next_attempt_at > utcnow() + dt.timedelta(seconds=50)  # backoff: not again at once
    assert await mailer.send_due() == (0, 0)
    assert await mailer.send_due(row.next_attempt_at + dt.timedelta(seconds=1)) == (1, 0)
    assert len(box.messages) == 1 and box.refused == 1
    (row,) = await outbox(db)
    assert row.sent_at is not None and row.attempts == 2 and row.last_error == ""
    assert await mailer.send_due(utcnow() + dt.timedelta(days=1)) == (0, 0)
    assert len(box.messages) == 1


async def test_server_down_keeps_the_mail_in_the_outbox(db: Database, org: Org, blobs: BlobStore,
                                                        inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    await assign_task(db, org, blobs)
    down = sender(db, free_port())  # nothing listens there
    later = utcnow()
    for attempt in range(1, 4):
        assert await down.send_due(later) == (0, 1)
        (row,) = await outbox(db)
        assert row.sent_at is None and row.attempts == attempt and row.last_error
        assert row.next_attempt_at - later == down.backoff(attempt)  # 60 s, 120 s, 240 s
        later = row.next_attempt_at
    # the server is back: the same message goes, once
    assert await sender(db, port).send_due(later) == (1, 0)
    assert len(box.messages) == 1


def test_backoff_doubles_up_to_its_cap() -> None:
    m = MailSender(None, SmtpConfig(), retry_base=60, retry_max=3600)  # type: ignore[arg-type]
    assert [m.backoff(n).total_seconds() for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]
