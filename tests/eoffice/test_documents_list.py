"""list_documents: newest first, pages, and a count that stops past ``max_total``."""

from __future__ import annotations

from eoffice import documents
from eoffice.documents import register_incoming
from storage.blobs import BlobStore
from storage.db import Database
from tests.eoffice.conftest import Org, incoming_fields


async def test_list_pages_and_capped_total(db: Database, org: Org, blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        ids = [(await register_incoming(uow, clerk, blobs, **incoming_fields(
            500 + i, summary=f"Báo cáo {i} về cải cách hành chính tại Đông Triều")))[0].id for i in range(5)]
        await uow.commit()
    async with db.uow() as uow:
        rows, total = await documents.list_documents(uow, clerk)
        assert [d.id for d in rows] == ids[::-1] and total == 5
        rows, total = await documents.list_documents(uow, clerk, limit=2, offset=2, max_total=3)
        assert [d.id for d in rows] == ids[2:0:-1] and total == 4  # more than 3
        _rows, total = await documents.list_documents(uow, clerk, max_total=5)
        assert total == 5
        _rows, total = await documents.list_documents(uow, clerk, with_total=False)
        assert total == -1
        assert await documents.list_documents(uow, org["chuyenvien2"], max_total=3) == ([], 0)
