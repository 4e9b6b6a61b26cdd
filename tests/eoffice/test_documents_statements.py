"""How many SQL statements registering a document and storing its extracted text take.

Each is a round trip to PostgreSQL; bench/ingest.py (issue #4) lost a third of its ratio to about
30 of them per document, among them re-reads of what the caller had in hand and the reader keys
written twice. The counts are pinned so that a new statement on this path is a decision, not an
accident: if a change needs one, raise the number here and say why in the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, text

from eoffice import access, ingest, search
from eoffice.documents import register_incoming
from eoffice.ingest import IngestRunner
from eoffice.schema.documents import Document
from storage.blobs import BlobStore
from storage.db import Database
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload

# statements of the second registration of one PDF (a clerk of an office of the agency, a date issued
# to check for duplicates), and of storing its text (the first document
# also creates the register's and the audit chain's rows). SQLite counts its BEGIN IMMEDIATE.
REGISTER = {"postgresql": 14, "sqlite": 17}
STORE_TEXT = {"postgresql": 8, "sqlite": 11}


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(" ".join(statement.split())[:120])

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_statements_to_register_and_index(db: Database, org: Org, blobs: BlobStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "PROGRESS_INTERVAL", 60)  # no progress write, however slow the machine
    clerk = org["vanthu"]
    runner = IngestRunner(db, blobs, processes=0)
    try:
        for i in (1, 2):
            async with db.uow() as uow:
                upload_id = await upload(uow, clerk, blobs, make_pdf([f"Kế hoạch chuyển đổi số Quảng Ninh {i}"]))
                await uow.commit()
            with counting(db) as registering:
                async with db.uow() as uow:
                    doc, jobs = await register_incoming(uow, clerk, blobs, **incoming_fields(i),
                                                        upload_ids=[upload_id])
                    await uow.commit()
            with counting(db) as storing:
                runner.submit(jobs)
                await runner.drain()
    finally:
        await runner.stop()
    dialect = db.dialect
    assert len(registering) == REGISTER[dialect], "\n".join(registering)
    assert len(storing) == STORE_TEXT[dialect], "\n".join(storing)

    async with db.uow() as uow:  # fewer statements, the same index and the same access
        hits = await search.search(uow, clerk, "ke hoach chuyen doi so quang ninh 2")  # the extracted text
        assert [h.document.id for h in hits] == [doc.id]
        assert await search.search(uow, org["chuyenvien"], "quang ninh") == []  # no grant, not a clerk
        if dialect == "postgresql":  # the reader keys stored in the vector are the rule's
            row = await uow.session.get(Document, doc.id)
            assert row is not None
            expected = search.meta_lexemes(row.id, access.reader_keys(await access.facts(uow, row)),
                                           row.date_issued)
            stored = (await uow.session.scalars(text(
                "SELECT u.lexeme FROM documents, unnest(search_vector) AS u WHERE id = :id AND u.lexeme LIKE '~%'"),
                {"id": doc.id})).all()
            assert set(stored) == set(expected)
            assert await uow.session.scalar(select(Document.id).where(Document.search_vector.is_(None))) is None
