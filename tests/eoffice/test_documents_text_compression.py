"""Migration 0012: extracted texts and search vectors are compressed with LZ4 on PostgreSQL (cheaper
for the backend than pglz when a document's text is stored, issue #4), and the migration goes
down and up again on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import text

from eoffice import search
from eoffice.documents import register_incoming
from storage.db import Database
from storage.migrate import alembic_config, migrate
from tests.conftest import scratch_pg_database
from tests.eoffice.conftest import Org, incoming_fields

TEXT = "Ủy ban nhân dân huyện Đông Triều triển khai chính quyền điện tử. " * 2000  # well past TOAST's 2 kB

_COMPRESSION = text("""
    SELECT CAST(a.attcompression AS text) FROM pg_attribute a
    WHERE a.attrelid = CAST(:table AS regclass) AND a.attname = :column""")


async def _compression(db: Database) -> dict[str, str]:
    async with db.uow(readonly=True) as uow:
        return {f"{t}.{c}": await uow.session.scalar(_COMPRESSION, {"table": t, "column": c})
                for t, c in (("document_attachments", "text"), ("documents", "search_vector"))}


async def test_texts_are_stored_with_lz4_and_read_back(db: Database, org: Org) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(1))  # type: ignore[arg-type]
        await uow.session.execute(text(
            "INSERT INTO document_attachments (document_id, blob_key, filename, content_type, size, is_pdf, text, "
            "scanned_pages, created_at) VALUES (:doc, 'k', 'a.pdf', 'application/pdf', 1, true, :text, '[]', "
            "CURRENT_TIMESTAMP)"), {"doc": doc.id, "text": TEXT})
        await search.index_document(uow, doc)  # reads the stored text back
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        assert await uow.session.scalar(text("SELECT text FROM document_attachments")) == TEXT
        assert [h.document.id for h in await search.search(uow, clerk, "chinh quyen dien tu dong trieu")] == [doc.id]
        if db.dialect == "postgresql":
            method = await uow.session.scalar(text(
                "SELECT pg_column_compression(text) FROM document_attachments"))
            assert method == "lz4"
    if db.dialect == "postgresql":
        assert await _compression(db) == {"document_attachments.text": "l", "documents.search_vector": "l"}


def _down_and_up(url: str) -> None:
    cfg = alembic_config(url)
    command.downgrade(cfg, "0011")
    command.upgrade(cfg, "0012")


async def test_migration_goes_down_and_up_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    await asyncio.to_thread(migrate, url, "0012")
    await asyncio.to_thread(_down_and_up, url)
    db = Database(url)
    try:
        async with db.uow(readonly=True) as uow:
            assert await uow.session.scalar(text("SELECT version_num FROM alembic_version")) == "0012"
    finally:
        await db.dispose()


async def test_migration_goes_down_and_up_on_postgresql() -> None:
    async with scratch_pg_database("eoffice_m0012") as url:
        db = Database(url)
        try:
            await asyncio.to_thread(migrate, url, "0012")
            assert await _compression(db) == {"document_attachments.text": "l", "documents.search_vector": "l"}
            await asyncio.to_thread(command.downgrade, alembic_config(url), "0011")
            assert await _compression(db) == {"document_attachments.text": "", "documents.search_vector": ""}
            await asyncio.to_thread(command.upgrade, alembic_config(url), "0012")
            assert await _compression(db) == {"document_attachments.text": "l", "documents.search_vector": "l"}
        finally:
            await db.dispose()
