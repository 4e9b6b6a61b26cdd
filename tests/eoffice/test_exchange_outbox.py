"""The exchange outbox (#16) without a network: what is queued when a document is issued to a peer or moves after
arriving from one, once per package, and how the sender retries (a doubling back-off) until the platform takes it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from eoffice import edxml, exchange
from eoffice.edxml_parse import parse
from eoffice.exchange_outbox import queue_document
from eoffice.exchange_sign import public_key_text
from eoffice.exchange_transport import ExchangeSender, Refused
from eoffice.schema.exchange import ExchangeOutbox, ExchangePeer
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Conflict, Forbidden, NotFound
from tests.eoffice.conftest import Org, make_pdf
from tests.eoffice.test_edxml_exchange import issue_document


class Platform:
    """Down for the first ``down`` attempts, then takes every package."""

    def __init__(self, down: int = 0, refuse: bool = False) -> None:
        self.down, self.refuse, self.got = down, refuse, []  # type: ignore[var-annotated]

    async def deliver(self, peer: ExchangePeer, from_organ: str, idem_key: str, package: bytes) -> int:
        if self.down > 0:
            self.down -= 1
            raise ConnectionRefusedError("máy chủ bên nhận không trả lời")
        if self.refuse:
            raise Refused(422, "Gói tin không đọc được")
        self.got.append((peer.organ_id, from_organ, idem_key, package))
        return 201


async def _peer(db: Database, agency: str, organ: str, name: str, clerk: str) -> None:
    async with db.uow() as uow:
        await exchange.add_peer(uow, agency_code=agency, organ_id=organ, name=name, base_url="https://vpdt.example.vn",
                                public_key=public_key_text(organ), clerk=clerk)
        await uow.commit()


async def _rows(db: Database) -> list[ExchangeOutbox]:
    async with db.uow(readonly=True) as uow:
        return list((await uow.session.scalars(select(ExchangeOutbox).order_by(ExchangeOutbox.id))).all())


async def test_issued_to_a_peer_is_delivered_after_retries_once(db: Database, org: Org, blobs: BlobStore) -> None:
    await _peer(db, "UBND", "000.00.00.H41", "Ủy ban nhân dân thị xã Đông Triều", "vanthu")
    # addressed by name to «Ủy ban nhân dân thị xã Đông Triều»: the peer of that name, queued when issued
    issued = await issue_document(db, org, blobs, make_pdf(["Quyết định thành lập Tổ công tác chuyển đổi số"]))
    (row,) = await _rows(db)
    async with db.uow() as uow:
        peer = (await uow.session.scalars(select(ExchangePeer))).one()
        link = await edxml.out_link(uow, issued, org.units["UBND"])
        assert await queue_document(uow, peer, issued.id, link.remote_document_id, org["vanthu"].id) is None
        await uow.commit()
    assert [r.id for r in await _rows(db)] == [row.id]  # the same package is queued once
    assert row.idem_key == f"{link.remote_document_id}#doc0" and row.kind == "document"

    platform = Platform(down=2)
    sender = ExchangeSender(db, blobs, platform, retry_base=60)
    now = utcnow()
    assert await sender.send_due(now) == (0, 1)
    (row,) = await _rows(db)
    assert row.attempts == 1 and "ConnectionRefusedError" in row.last_error and row.sent_at is None
    assert abs((row.next_attempt_at - now).total_seconds() - 60) < 2
    assert await sender.send_due(now + dt.timedelta(seconds=30)) == (0, 0)  # not due yet
    assert await sender.send_due(now + dt.timedelta(seconds=61)) == (0, 1)
    (row,) = await _rows(db)
    assert row.attempts == 2 and abs((row.next_attempt_at - now).total_seconds() - 181) < 2  # 60 s, then 120 s
    assert await sender.send_due(now + dt.timedelta(seconds=200)) == (1, 0)
    (row,) = await _rows(db)
    assert row.sent_at is not None and row.attempts == 3 and row.last_error == "" and row.blob_key
    ((organ, ours, key, package),) = platform.got
    assert (organ, ours, key) == ("000.00.00.H41", "UBND", row.idem_key)
    assert parse(package).document_id == link.remote_document_id and parse(package).subject == issued.summary

    # sent by hand to another peer (not among the recipients); once per peer; only registered peers
    await _peer(db, "UBND", "000.00.00.H42", "Ủy ban nhân dân huyện Vân Đồn", "vanthu")
    async with db.uow() as uow:
        extra = await exchange.send_document(uow, org["vanthu"], issued.id, "000.00.00.H42")
        await uow.commit()
    assert extra.idem_key == row.idem_key and extra.peer_id != row.peer_id
    async with db.uow() as uow:
        with pytest.raises(Conflict, match="Gửi lại"):
            await exchange.send_document(uow, org["vanthu"], issued.id, "000.00.00.H42")
        with pytest.raises(NotFound, match="chưa được đăng ký"):
            await exchange.send_document(uow, org["vanthu"], issued.id, "000.00.00.H99")
        with pytest.raises(Forbidden):
            await exchange.send_document(uow, org["chuyenvien"], issued.id, "000.00.00.H42")


async def test_statuses_go_back_to_the_peer_that_sent_the_document(db: Database, org: Org, blobs: BlobStore
                                                                  ) -> None:
    issued = await issue_document(db, org, blobs, make_pdf(["Quyết định thành lập Tổ công tác"]))
    async with db.uow() as uow:
        package = await edxml.export_document(uow, org["vanthu"], blobs, issued.id)
        await uow.commit()
    await _peer(db, "DT", "UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", "dt.vanthu")
    async with db.uow() as uow:  # Đông Triều receives it from its peer
        result = await edxml.import_package(uow, org["dt.vanthu"], blobs, package, "qd.xml")
        await uow.commit()
    assert result.ok and result.document is not None
    async with db.uow() as uow:
        await edxml.record_status(uow, org["dt.vanthu"], result.document.id, "03", "04")
        await edxml.record_status(uow, org["dt.vanthu"], result.document.id, "04", "06")
        await uow.commit()
    rows = await _rows(db)
    assert [(r.kind, r.status_code) for r in rows] == [("status", c) for c in ("01", "03", "04", "06")]
    platform = Platform(refuse=True)
    sender = ExchangeSender(db, blobs, platform)
    assert await sender.send_due() == (0, 4)  # refused for good: closed with the reason, not retried
    rows = await _rows(db)
    assert all(r.sent_at is not None and r.last_error.startswith("Gone: 422") and r.last_status == 422 for r in rows)
    async with db.uow() as uow:  # the clerk sends one again
        await exchange.resend(uow, org["dt.vanthu"], rows[0].id)
        await uow.commit()
    platform.refuse = False
    assert await sender.send_due() == (1, 0)
    ((organ, ours, key, status_xml),) = platform.got
    st = parse(status_xml).status
    assert (organ, ours) == ("UBND", "DT") and st is not None and st.code == "01" and key.endswith("#st01")
    async with db.uow() as uow:  # back at the sender's: on the document's timeline
        back = await edxml.import_package(uow, org["vanthu"], blobs, status_xml, "trang-thai.xml")
        await uow.commit()
    assert back.ok and back.document is not None and back.document.id == issued.id
