"""Web Push of notifications against a local push service (issue #21): a test HTTP server plays the push service
and the browser -- it holds the subscription's keys, checks the VAPID JWT of each request against the server's
public key and decrypts the aes128gcm payload (tests/push_receiver.py). A task due tomorrow arrives as the
Vietnamese sentence with its link; a subscription the service says is gone (410) is removed; a 503 is retried
after the backoff. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from eoffice import channels, notifications, tasks
from eoffice.channels import ChannelSender, PushConfig, SmsConfig
from eoffice.notifications import Config
from eoffice.org import User
from eoffice.schema.notifications import ChannelOutbox, Notification, PushSubscription
from eoffice.tasks import Assignee
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from tests.eoffice.conftest import Org
from tests.eoffice.test_notifications import registered, today
from tests.push_receiver import Browser, Receiver, check_vapid

BASE = "https://vpdt.quangninh.gov.vn"
SUBJECT = "mailto:vpdt@quangninh.gov.vn"
SUMMARY = "Công văn về việc triển khai chính quyền điện tử (lần 1)"


@pytest.fixture
def push_service() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()


def sender(db: Database) -> ChannelSender:
    return ChannelSender(db, PushConfig(enabled=True, subject=SUBJECT, timeout=10), SmsConfig(), retry_base=60)


async def task_due_tomorrow(db: Database, org: Org, blobs: BlobStore) -> int:
    doc_id = await registered(db, org, blobs)
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    async with db.uow() as uow:
        _, (task,) = await tasks.direct(
            uow,
            org["lanhdao"],
            doc_id,
            text="Chị Hà chủ trì, báo cáo đúng hạn.",
            main=Assignee(user_id=org["chuyenvien"].id),
            deadline=today() + dt.timedelta(days=1),
        )
        await uow.commit()
    return task.id


async def subscribe(db: Database, org: Org, browser: Browser) -> None:
    async with db.uow() as uow:
        user = await uow.session.get(User, org["chuyenvien"].id)
        assert user is not None
        sub = browser.subscription()
        await channels.subscribe(
            uow,
            user,
            sub["endpoint"],
            sub["keys"]["p256dh"],
            sub["keys"]["auth"],
            hosts=("127.0.0.1",),
            user_agent="Chromium (máy tính bảng)",
        )
        await uow.commit()


async def deadline_reminders(db: Database) -> int:
    notifications.install(db, Config(push=True, base_url=BASE))
    async with db.uow() as uow:
        sent = await notifications.check_deadlines(uow, Config(push=True, base_url=BASE), today())
        await uow.commit()
    return sent


async def rows(db: Database) -> list[ChannelOutbox]:
    async with db.uow() as uow:
        return list((await uow.session.scalars(select(ChannelOutbox).order_by(ChannelOutbox.id))).all())


async def test_task_deadline_arrives_signed_and_decrypts_to_the_vietnamese_sentence(
    db: Database, org: Org, blobs: BlobStore, push_service: Receiver
) -> None:
    task_id = await task_due_tomorrow(db, org, blobs)
    browser = Browser(f"{push_service.origin}/wpush/v2/gAAAAABn-thiet-bi-1")
    await subscribe(db, org, browser)
    assert await deadline_reminders(db) == 1
    assert await sender(db).send_due() == (1, 0)

    (req,) = push_service.received
    assert req.path == "/wpush/v2/gAAAAABn-thiet-bi-1"
    assert req.headers["content-encoding"] == "aes128gcm" and int(req.headers["ttl"]) > 0
    claims = check_vapid(req.headers, channels.vapid_public(db.url), push_service.origin)
    assert claims["sub"] == SUBJECT
    message = json.loads(browser.decrypt(req.body))
    deadline = f"{today() + dt.timedelta(days=1):%d/%m/%Y}"
    assert message["title"] == "Nhiệm vụ sắp đến hạn"
    assert message["body"] == f"Nhiệm vụ «{SUMMARY}» đến hạn ngày {deadline} (còn 1 ngày)."
    assert message["link"] == f"/tasks/{task_id}" and message["url"] == f"{BASE}/tasks/{task_id}"
    async with db.uow() as uow:
        note = await uow.session.scalar(select(Notification).where(Notification.kind == "task.due"))
    assert note is not None and message["id"] == note.id  # the tag the service worker shows it under
    (row,) = await rows(db)
    assert row.sent_at is not None and row.attempts == 1 and row.last_error == ""
    assert await sender(db).send_due() == (0, 0)  # delivered once
    assert len(push_service.received) == 1


async def test_a_gone_subscription_is_removed_with_what_waits_for_it(
    db: Database, org: Org, blobs: BlobStore, push_service: Receiver
) -> None:
    await task_due_tomorrow(db, org, blobs)
    await subscribe(db, org, Browser(f"{push_service.origin}/wpush/het-han"))
    push_service.statuses = [410]
    assert await deadline_reminders(db) == 1
    assert await sender(db).send_due() == (0, 1)
    async with db.uow() as uow:
        assert (await uow.session.scalars(select(PushSubscription))).all() == []
    (row,) = await rows(db)
    assert row.sent_at is not None and row.subscription_id is None and row.last_error.startswith("Gone: HTTP 410")
    assert await sender(db).send_due(utcnow() + dt.timedelta(hours=2)) == (0, 0)
    assert push_service.answered == [410]


async def test_a_push_service_error_is_retried_after_the_backoff(
    db: Database, org: Org, blobs: BlobStore, push_service: Receiver
) -> None:
    await task_due_tomorrow(db, org, blobs)
    browser = Browser(f"{push_service.origin}/wpush/ban")
    await subscribe(db, org, browser)
    push_service.statuses = [503]
    assert await deadline_reminders(db) == 1
    push = sender(db)
    now = utcnow()
    assert await push.send_due(now) == (0, 1)
    (row,) = await rows(db)
    assert row.sent_at is None and row.attempts == 1 and "HTTP 503" in row.last_error
    assert row.next_attempt_at >= now + dt.timedelta(seconds=59)
    assert await push.send_due(now + dt.timedelta(seconds=30)) == (0, 0)  # not before the backoff
    assert await push.send_due(now + dt.timedelta(seconds=61)) == (1, 0)
    assert push_service.answered == [503, 201]
    first, second = (json.loads(browser.decrypt(r.body)) for r in push_service.received)
    assert first == second and first["title"] == "Nhiệm vụ sắp đến hạn"


async def test_a_confidential_documents_push_does_not_carry_its_title(
    db: Database, org: Org, blobs: BlobStore, push_service: Receiver
) -> None:
    notifications.install(db, Config(push=True, base_url=BASE))
    browser = Browser(f"{push_service.origin}/wpush/mat")
    async with db.uow() as uow:
        lead = await uow.session.get(User, org["lanhdao"].id)
        assert lead is not None
        sub = browser.subscription()
        await channels.subscribe(
            uow, lead, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], hosts=("127.0.0.1",)
        )
        await uow.commit()
    doc_id = await registered(db, org, blobs, 2, confidentiality="mat", summary="Phương án nhân sự (mật)")
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    assert await sender(db).send_due() == (1, 0)
    message = json.loads(browser.decrypt(push_service.received[0].body))
    assert "Phương án nhân sự" not in json.dumps(message, ensure_ascii=False)
    assert message["body"] == channels.SECRET_TEXT and message["link"] == f"/documents/{doc_id}"
