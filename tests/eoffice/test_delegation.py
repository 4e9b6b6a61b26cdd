"""Ủy quyền (#18): while a delegation lasts the deputy sees the leader's queue and directs / approves for them,
recorded «thay mặt» in the audit and on the record; not before it starts, not after it ends, not after a revoke."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from eoffice import audit, delegation, identity, outgoing, tasks
from eoffice.documents import get_document, register_incoming
from eoffice.org import Role, User
from eoffice.schema.delegations import Delegation
from eoffice.schema.outgoing import ApprovalStep
from eoffice.schema.tasks import DirectionNote, Submission
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Forbidden, Invalid, NotFound
from tests.eoffice.conftest import PASSWORD, Org, incoming_fields, make_pdf, upload


async def _deputy(db: Database, org: Org) -> User:
    async with db.uow() as uow:
        chief = await uow.session.get(User, org["lanhdao"].id)
        assert chief is not None
        chief.title = "Chủ tịch UBND tỉnh"
        deputy = await identity.create_user(
            uow,
            None,
            username="phochutich",
            full_name="Lê Minh Tuấn",
            password=PASSWORD,
            roles=[Role.LEADER],
            unit_id=org.units["UBND"].id,
            title="Phó Chủ tịch UBND tỉnh",
        )
        await uow.commit()
    return deputy


async def _submitted(db: Database, org: Org, blobs: BlobStore, i: int) -> int:
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(i), paper_only=True)
        await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id, "Kính trình Chủ tịch")
        await uow.commit()
    return doc.id


async def _delegate(db: Database, org: Org, deputy: User, scopes: list[str]) -> Delegation:
    async with db.uow() as uow:
        d = await delegation.create(
            uow,
            org["lanhdao"],
            to_user_id=deputy.id,
            scopes=scopes,
            starts_at=utcnow() - dt.timedelta(minutes=5),
            ends_at=utcnow() + dt.timedelta(days=3),
            note="Đi công tác Hà Nội",
        )
        await uow.commit()
    return d


async def _expire(db: Database, delegation_id: int) -> None:
    """Time passes: the delegation's end is now behind us."""
    async with db.uow() as uow:
        await uow.session.execute(
            update(Delegation).where(Delegation.id == delegation_id).values(ends_at=utcnow() - dt.timedelta(seconds=1))
        )
        await uow.commit()


async def _direct(db: Database, org: Org, actor: User, doc_id: int) -> DirectionNote:
    async with db.uow() as uow:
        note, _ = await tasks.direct(
            uow, actor, doc_id, text="Giao Phòng Kinh tế chủ trì tham mưu.", main={"unit_id": org.units["KT"].id}
        )
        await uow.commit()
    return note


async def test_deputy_directs_during_the_period_and_not_after(db: Database, org: Org, blobs: BlobStore) -> None:
    deputy = await _deputy(db, org)
    first = await _submitted(db, org, blobs, 1)
    async with db.uow() as uow:  # before: the chief's document is not the deputy's business
        with pytest.raises(NotFound):
            await get_document(uow, deputy, first)
        with pytest.raises(Invalid, match="chính mình"):
            await delegation.create(
                uow,
                org["lanhdao"],
                to_user_id=org["lanhdao"].id,
                scopes=["direct"],
                starts_at=utcnow(),
                ends_at=utcnow() + dt.timedelta(days=1),
            )
        with pytest.raises(Invalid, match="lãnh đạo"):
            await delegation.create(
                uow,
                org["lanhdao"],
                to_user_id=org["chuyenvien"].id,
                scopes=["direct"],
                starts_at=utcnow(),
                ends_at=utcnow() + dt.timedelta(days=1),
            )
        with pytest.raises(Forbidden):
            await delegation.create(
                uow,
                org["chuyenvien"],
                to_user_id=deputy.id,
                scopes=["direct"],
                starts_at=utcnow(),
                ends_at=utcnow() + dt.timedelta(days=1),
            )
    d = await _delegate(db, org, deputy, ["direct"])

    async with db.uow(readonly=True) as uow:  # the chief's queue is the deputy's while it lasts
        box = await tasks.inbox(uow, deputy)
        assert [x["id"] for x in box["submitted"]] == [first]
    note = await _direct(db, org, deputy, first)
    assert note.leader_id == deputy.id and note.on_behalf_of == org["lanhdao"].id
    async with db.uow(readonly=True) as uow:
        sub = await uow.session.scalar(select(Submission).where(Submission.document_id == first))
        assert sub is not None and sub.status == "directed"
        entry = await uow.session.scalar(
            select(audit.AuditEntry)
            .where(audit.AuditEntry.action == "document.direct")
            .order_by(audit.AuditEntry.seq.desc())
            .limit(1)
        )
        assert entry is not None and entry.actor_name == "phochutich"
        assert entry.data["on_behalf_of"] == "lanhdao"
        assert entry.data["on_behalf_label"] == (
            "Phó Chủ tịch UBND tỉnh Lê Minh Tuấn thay mặt Chủ tịch UBND tỉnh Trần Văn Hùng"
        )
        view = await tasks.task_tree(uow, deputy, first)
        assert view["directions"][0]["on_behalf_of"] == org["lanhdao"].id

    second = await _submitted(db, org, blobs, 2)
    await _expire(db, d.id)
    async with db.uow(readonly=True) as uow:  # after: nothing of the chief's any more
        assert (await tasks.inbox(uow, deputy))["submitted"] == []
    with pytest.raises(NotFound):
        await _direct(db, org, deputy, second)
    note = await _direct(db, org, org["lanhdao"], second)  # the chief himself, as himself
    assert note.on_behalf_of is None


async def test_revoke_ends_it_at_once(db: Database, org: Org, blobs: BlobStore) -> None:
    deputy = await _deputy(db, org)
    doc_id = await _submitted(db, org, blobs, 3)
    d = await _delegate(db, org, deputy, ["direct", "approve"])
    async with db.uow(readonly=True) as uow:
        await get_document(uow, deputy, doc_id)
    async with db.uow() as uow:
        with pytest.raises(NotFound):  # not theirs to revoke
            await delegation.revoke(uow, org["chuyenvien"], d.id)
        await delegation.revoke(uow, org["lanhdao"], d.id)
        await uow.commit()
    with pytest.raises(NotFound):
        await _direct(db, org, deputy, doc_id)
    async with db.uow(readonly=True) as uow:
        row = await uow.session.get(Delegation, d.id)
        assert row is not None and row.revoked_by == org["lanhdao"].id
        actions = (
            await uow.session.scalars(
                select(audit.AuditEntry.action).where(audit.AuditEntry.object_type == "delegation")
            )
        ).all()
        assert list(actions) == ["delegation.create", "delegation.revoke"]


async def test_deputy_approves_a_draft_on_behalf(db: Database, org: Org, blobs: BlobStore) -> None:
    deputy = await _deputy(db, org)
    cv, head, chief = org["chuyenvien"], org["truongphong"], org["lanhdao"]
    async with db.uow() as uow:
        file_id = await upload(uow, cv, blobs, make_pdf(["Dự thảo Kế hoạch chuyển đổi số năm 2027"]), "kh.pdf")
        doc = await outgoing.create_draft(
            uow, cv, blobs, doc_type="ke_hoach", summary="Kế hoạch chuyển đổi số năm 2027", upload_id=file_id
        )
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await uow.commit()
    async with db.uow() as uow:
        await outgoing.approve(uow, head, doc.id, comment="Kính trình Chủ tịch", forward_to=chief.id)
        await uow.commit()
    async with db.uow() as uow:  # no delegation: not the deputy's turn (nor document)
        with pytest.raises(NotFound):
            await outgoing.approve(uow, deputy, doc.id)
    await _delegate(db, org, deputy, ["direct"])
    async with db.uow() as uow:  # a delegation of directing only does not approve
        with pytest.raises(Forbidden, match="lượt"):
            await outgoing.approve(uow, deputy, doc.id)
    await _delegate(db, org, deputy, ["approve"])
    async with db.uow() as uow:
        step = await outgoing.approve(uow, deputy, doc.id, comment="Đồng ý ban hành")
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        row = await uow.session.get(ApprovalStep, step.id)
        assert row is not None and (row.approver_id, row.decided_by, row.status) == (chief.id, deputy.id, "approved")
        entry = await uow.session.scalar(
            select(audit.AuditEntry)
            .where(audit.AuditEntry.action == "draft.approve")
            .order_by(audit.AuditEntry.seq.desc())
            .limit(1)
        )
        assert entry is not None and entry.data["final"] is True and entry.data["on_behalf_of"] == "lanhdao"
        assert "thay mặt Chủ tịch UBND tỉnh Trần Văn Hùng" in entry.data["on_behalf_label"]
