"""Bút phê (issue 22 item 7): a leader directs by handwriting on the document's pages; the ink is kept with the
direction, shown in the document's tree, audited by page; hostile or foreign ink is refused. SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from eoffice import ink, tasks
from eoffice.audit import AuditEntry
from eoffice.documents import attachments_of, get_document
from eoffice.tasks import Assignee
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import Invalid
from tests.eoffice.conftest import Org
from tests.eoffice.test_notifications import registered

STROKE = [[0.12, 0.2], [0.18, 0.22, 0.6], [0.3, 0.21]]


async def _submitted(db: Database, org: Org, blobs: BlobStore, i: int = 1) -> int:
    """A registered document the clerk submitted to the leader (who may then see and direct it)."""
    doc_id = await registered(db, org, blobs, i)
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    return doc_id


async def _attachment(db: Database, org: Org, doc_id: int) -> int:
    async with db.uow(readonly=True) as uow:
        doc = await get_document(uow, org["vanthu"], doc_id)
        (att,) = await attachments_of(uow, doc)
        return att.id


async def test_a_direction_written_by_hand_only(db: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await _submitted(db, org, blobs)
    att = await _attachment(db, org, doc_id)
    written = [{"attachment_id": att, "page": 1, "strokes": [STROKE, [[0.5, 0.5]]]}]
    async with db.uow() as uow:
        note, (task,) = await tasks.direct(uow, org["lanhdao"], doc_id, text="  ",
                                           main=Assignee(user_id=org["chuyenvien"].id), ink=json.dumps(written))
        await uow.commit()
    assert note.ink == written and note.text == tasks.INK_ONLY_TEXT and task.instruction == tasks.INK_ONLY_TEXT
    async with db.uow(readonly=True) as uow:
        tree = await tasks.task_tree(uow, org["lanhdao"], doc_id)
        entry = (await uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "document.direct"))).one()
    assert tree["directions"][0]["ink"] == written
    assert entry.data["ink_pages"] == [[att, 1]]
    assert ink.svg_paths(written[0]["strokes"]) == ["M120.0 200.0 L180.0 220.0 L300.0 210.0", "M500.0 500.0 l0.1 0"]


async def test_no_text_and_no_ink_or_bad_ink_is_refused(db: Database, org: Org, blobs: BlobStore) -> None:
    doc_id = await _submitted(db, org, blobs)
    other_id = await _submitted(db, org, blobs, 2)
    att, foreign = await _attachment(db, org, doc_id), await _attachment(db, org, other_id)
    bad = [
        None,  # nothing at all
        [{"attachment_id": foreign, "page": 1, "strokes": [STROKE]}],  # another document's file
        [{"attachment_id": att, "page": 99, "strokes": [STROKE]}],  # no such page
        [{"attachment_id": att, "page": 1, "strokes": [[[1.5, 0.2]]]}],  # off the page
        [{"attachment_id": att, "page": 1, "strokes": [[["0.1", 0.2]]]}],  # not a number
        [{"attachment_id": att, "page": 1, "strokes": [[[0.1, 0.1]]] * (ink.MAX_STROKES + 1)}],  # too long
        "{not json",
    ]
    for value in bad:
        async with db.uow() as uow:
            with pytest.raises(Invalid) as err:
                await tasks.direct(uow, org["lanhdao"], doc_id, text="", main=Assignee(user_id=org["chuyenvien"].id),
                                   ink=value)
        assert err.value.details.get("field") in ("ink", "text"), value
