"""SMS of urgent notifications through the agency's gateway (issue #21), against a local HTTP receiver: a hỏa tốc
document submitted to a leader with a phone number is POSTed as JSON with the gateway's token; a 500 is retried
after the backoff and then delivered once; an ordinary document sends no SMS, nor does a user without a phone.
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from eoffice import notifications, tasks
from eoffice.channels import ChannelSender, PushConfig, SmsConfig
from eoffice.notifications import Config
from eoffice.org import User
from eoffice.schema.notifications import ChannelOutbox
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from tests.eoffice.conftest import Org
from tests.eoffice.test_notifications import registered
from tests.push_receiver import Receiver

BASE = "https://vpdt.quangninh.gov.vn"
TOKEN = "ma-bi-mat-cua-cong-sms"
PHONE = "0912345678"


@pytest.fixture
def gateway() -> Iterator[Receiver]:
    receiver = Receiver(default=200)
    try:
        yield receiver
    finally:
        receiver.close()


def sender(db: Database, gateway: Receiver) -> ChannelSender:
    return ChannelSender(
        db, PushConfig(), SmsConfig(url=f"{gateway.origin}/api/sms/send", token=TOKEN, timeout=10), retry_base=60
    )


async def submit(db: Database, org: Org, blobs: BlobStore, i: int, **fields: object) -> int:
    notifications.install(db, Config(sms=True, base_url=BASE))
    doc_id = await registered(db, org, blobs, i, **fields)
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    return doc_id


async def give_phone(db: Database, user_id: int, phone: str = PHONE) -> None:
    async with db.uow() as uow:
        user = await uow.session.get(User, user_id)
        assert user is not None
        user.phone = phone
        await uow.commit()


async def sms_rows(db: Database) -> list[ChannelOutbox]:
    async with db.uow() as uow:
        return list(
            (
                await uow.session.scalars(
                    select(ChannelOutbox).where(ChannelOutbox.channel == "sms").order_by(ChannelOutbox.id)
                )
            ).all()
        )


async def test_a_flash_document_goes_by_sms_retried_after_a_500(
    db: Database, org: Org, blobs: BlobStore, gateway: Receiver
) -> None:
    await give_phone(db, org["lanhdao"].id)
    doc_id = await submit(db, org, blobs, 1, urgency="hoa_toc")
    gateway.statuses = [500]
    sms = sender(db, gateway)
    now = utcnow()
    assert await sms.send_due(now) == (0, 1)
    (row,) = await sms_rows(db)
    assert row.sent_at is None and row.attempts == 1 and row.last_error.startswith("DeliveryError: HTTP 500")
    assert await sms.send_due(now + dt.timedelta(seconds=30)) == (0, 0)  # the backoff: not yet
    assert await sms.send_due(now + dt.timedelta(seconds=61)) == (1, 0)
    assert await sms.send_due(now + dt.timedelta(hours=3)) == (0, 0)  # once
    assert gateway.answered == [500, 200]
    first, second = gateway.received
    assert second.path == "/api/sms/send" and second.headers["authorization"] == f"Bearer {TOKEN}"
    assert second.headers["content-type"] == "application/json"
    summary = "Công văn về việc triển khai chính quyền điện tử (lần 1)"
    assert (
        second.json()
        == first.json()
        == {
            "to": PHONE,
            "message": f"[VPĐT] Nguyễn Thị Lan trình văn bản «{summary}» để đồng chí cho ý kiến chỉ đạo. "
            f"{BASE}/documents/{doc_id}",
        }
    )
    (row,) = await sms_rows(db)
    assert row.sent_at is not None and row.attempts == 2 and row.last_error == ""


async def test_only_urgent_items_to_people_with_a_phone(
    db: Database, org: Org, blobs: BlobStore, gateway: Receiver
) -> None:
    await give_phone(db, org["lanhdao"].id)
    await submit(db, org, blobs, 1)  # thường: no SMS
    assert await sms_rows(db) == []
    await give_phone(db, org["lanhdao"].id, "")
    await submit(db, org, blobs, 2, urgency="hoa_toc")  # hỏa tốc, but no phone number
    assert await sms_rows(db) == []
    assert await sender(db, gateway).send_due() == (0, 0)
    assert gateway.received == []
