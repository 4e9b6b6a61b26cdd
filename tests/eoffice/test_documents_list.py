"""list_documents: newest first, pages, and a count that stops past ``max_total``."""

from __future__ import annotations

import itertools

import pytest

from eoffice import documents, search
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


async def test_pages_through_reader_keys_match_order_by(db: Database, org: Org, blobs: BlobStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL pages come from the reader keys bucket by bucket: with 2 ids a bucket (many
    rounds) every page of every user is the page of a plain ORDER BY over access.visible."""
    monkeypatch.setattr(search, "BUCKET_BITS", 1)
    async with db.uow() as uow:
        for i in range(7):
            level = "mat" if i % 3 == 0 else "thuong"
            clerk = org["vanthu"] if i % 2 else org["stttt.vanthu"]
            await register_incoming(uow, clerk, blobs, **incoming_fields(
                600 + i, confidentiality=level, summary=f"Tờ trình {i} về quy hoạch đô thị Đông Triều"))
        await uow.commit()
    async with db.uow() as uow:
        for name, user in org.users.items():
            for status, (limit, offset) in itertools.product((None, "registered", "done"), ((3, 0), (2, 3), (50, 0))):
                got = []
                for rounds in (True, False):
                    monkeypatch.setattr(documents, "PG_LIST_ROUNDS", rounds)
                    rows, total = await documents.list_documents(uow, user, status=status, limit=limit,
                                                                 offset=offset)
                    got.append(([d.id for d in rows], total))
                assert got[0] == got[1], (name, status, limit, offset)
