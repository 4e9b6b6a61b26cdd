"""Search filtered by date issued: the edges of a range (first and last day, month and year
boundaries, open ends) give exactly the documents issued in it, on SQLite (FTS5 and the rows'
dates) and on PostgreSQL (the year and month lexemes of the search vector, then the rows' dates)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from eoffice import registers, search
from eoffice.documents import register_incoming
from eoffice.schema.documents import Document
from storage.blobs import BlobStore
from storage.db import Database
from tests.eoffice.conftest import Org, incoming_fields

D = dt.date
ISSUED = [D(2024, 12, 31), D(2025, 12, 31), D(2026, 1, 1), D(2026, 1, 31), D(2026, 2, 1), D(2026, 2, 28),
          D(2026, 3, 1), None]
RANGES = [(D(2026, 1, 1), D(2026, 1, 31)), (D(2025, 12, 31), D(2026, 2, 1)), (None, D(2026, 1, 1)),
          (D(2026, 2, 28), None), (D(2026, 3, 2), None), (None, D(2024, 12, 30)), (D(2026, 1, 1), D(2026, 12, 31)),
          (D(2025, 1, 1), D(2025, 12, 31)), (D(2024, 12, 1), D(2026, 1, 1)), (D(2026, 2, 1), D(2026, 2, 1)),
          (D(2026, 2, 2), D(2026, 1, 31))]


def test_date_lexemes_cover_whole_years_and_months() -> None:
    assert search.date_lexemes(D(2024, 11, 3), D(2026, 2, 1)) == ["~m:202411", "~m:202412", "~y:2025", "~m:202601",
                                                                  "~m:202602"]
    assert search.date_lexemes(D(2025, 1, 1), D(2025, 12, 31)) == ["~y:2025"]
    assert search.date_lexemes(D(2025, 4, 1), D(2025, 3, 31)) == []
    assert search.meta_lexemes(8193, {"u:1"}, D(2026, 2, 1)) == ["~b:1", "~y:2026", "~m:202602", "~u:1"]


@pytest.mark.parametrize("bucket_bits", [13, 1])  # 1: two ids a bucket, every search goes in rounds
async def test_date_range_edges(db: Database, org: Org, blobs: BlobStore, bucket_bits: int,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "BUCKET_BITS", bucket_bits)
    clerk = org["vanthu"]
    ids: dict[int, D | None] = {}
    async with db.uow() as uow:
        for i, issued in enumerate(ISSUED):
            doc, _ = await register_incoming(uow, clerk, blobs, **incoming_fields(
                300 + i, date_issued=issued, summary=f"Kế hoạch {i} chuyển đổi số cấp xã Đông Triều"))
            ids[doc.id] = issued
        # received at 00:30 on 1 February in Hà Nội (17:30 UTC on 31 January): dated by the agency's day
        at = dt.datetime(2026, 1, 31, 17, 30, tzinfo=dt.UTC)
        doc, _ = await register_incoming(uow, clerk, blobs, received_at=at, **incoming_fields(
            399, date_issued=registers.local_date(at), summary="Kế hoạch chuyển đổi số cấp xã Đông Triều"))
        ids[doc.id] = doc.date_issued
        assert doc.date_issued == D(2026, 2, 1)
        await uow.commit()
    async with db.uow() as uow:
        for (lo, hi) in RANGES:
            expected = {i for i, d in ids.items() if d and (lo is None or d >= lo) and (hi is None or d <= hi)}
            f = search.Filters(date_from=lo, date_to=hi)
            for q in ("chuyen doi so cap xa", "Đông Triều", ""):
                hits = await search.search(uow, clerk, q, f, limit=100)
                assert {h.document.id for h in hits} == expected, (lo, hi, q)
            assert await search.search(uow, org["chuyenvien2"], "chuyen doi so", f) == []  # access still applies
        # a date corrected after registration moves the document to its new month
        moved = await uow.session.scalar(select(Document).where(Document.date_issued == D(2026, 1, 31)))
        assert moved is not None
        moved.date_issued = D(2023, 6, 30)
        search.keys_changed(uow, [moved.id])  # a change outside the services says so
        await uow.session.flush()
        june = search.Filters(date_from=D(2023, 6, 30), date_to=D(2023, 6, 30))
        assert [h.document.id for h in await search.search(uow, clerk, "chuyen doi so", june)] == [moved.id]
        jan = search.Filters(date_from=D(2026, 1, 1), date_to=D(2026, 1, 31))
        assert moved.id not in {h.document.id for h in await search.search(uow, clerk, "", jan)}
