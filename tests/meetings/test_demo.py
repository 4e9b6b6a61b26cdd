"""The demo meeting the integrator loads after the demo organisation."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from eoffice.demo import load_demo
from meetings import room
from meetings.demo import create_demo_meeting
from storage.blobs import open_blob_store
from storage.db import Database


async def test_demo_meeting(db: Database, tmp_path: Path) -> None:
    blobs = open_blob_store(f"file://{tmp_path}/blobs")
    async with db.uow() as uow:
        assert await create_demo_meeting(uow, blobs) is None  # no demo accounts: nothing to do
    async with db.uow() as uow:
        await load_demo(uow)
        m = await create_demo_meeting(uow, blobs)
        await uow.commit()
    assert m is not None and m.state == "invited"
    async with db.uow() as uow:
        from eoffice.identity import get_user

        member = await get_user(uow, "phochutich")
        snap = await room.room_snapshot(uow, member, m.id)
        clerk = await get_user(uow, "chuyenvien")  # the secretary sees the confidential item
        assert [i["restricted"] for i in (await room.room_snapshot(uow, clerk, m.id))["agenda"]] == [False] * 3
    assert len(snap["agenda"]) == 3 and snap["agenda"][2]["title"] == "Phương án kiện toàn nhân sự Ban Quản lý dự án"
    assert [d["versions"][0]["page_count"] for d in snap["documents"]] == [24, 6, 3]
    first = snap["documents"][0]
    async with db.uow() as uow:
        from meetings.schema import DocumentVersion

        v = await uow.session.get(DocumentVersion, first["current_version_id"])
        text = pymupdf.open(stream=await blobs.read(v.blob_key), filetype="pdf")[0].get_text()
    assert "Ủy ban nhân dân tỉnh Quảng Ninh" in text and "Đông Triều" in text
    await blobs.close()
