"""The sender filter of search (a substring of the folded sender) is served by a trigram index on
PostgreSQL (migration 0013, pg_trgm), finds senders typed with or without diacritics, and the
migration goes down and up."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import text

from eoffice import search
from eoffice.documents import register_incoming
from storage.db import Database
from storage.migrate import alembic_config, migrate
from tests.conftest import scratch_pg_database
from tests.eoffice.conftest import Org, incoming_fields

SENDERS = ["Ủy ban nhân dân thị xã Đông Triều", "Sở Thông tin và Truyền thông", "Ủy ban nhân dân huyện Vân Đồn"]


async def test_sender_filter_finds_a_part_of_the_name_without_diacritics(db: Database, org: Org) -> None:
    async with db.uow() as uow:
        for i, sender in enumerate(SENDERS, start=1):
            await register_incoming(uow, org["vanthu"], None, **incoming_fields(i, sender=sender))  # type: ignore[arg-type]
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        for typed, expected in (("dong trieu", [SENDERS[0]]), ("Ủy ban nhân dân", [SENDERS[2], SENDERS[0]]),
                                ("thong tin", [SENDERS[1]]), ("van don", [SENDERS[2]]), ("Hà Nội", [])):
            hits = await search.search(uow, org["vanthu"], "", search.Filters(sender=typed))
            assert [h.document.sender for h in hits] == expected, typed


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_sender_filter_uses_the_trigram_index(db: Database, org: Org) -> None:
    async with db.uow(readonly=True) as uow:
        indexdef = await uow.session.scalar(text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_documents_sender_trgm'"))
        assert indexdef is not None and "gin_trgm_ops" in indexdef
        await uow.session.execute(text("SET LOCAL enable_seqscan = off"))  # a few rows: make the planner show it
        plan = "\n".join((await uow.session.scalars(text(
            "EXPLAIN SELECT id FROM documents WHERE sender_key LIKE '%ubnd dong trieu%'"))).all())
        assert "ix_documents_sender_trgm" in plan, plan


async def test_migration_0013_goes_down_and_up_on_postgresql() -> None:
    async with scratch_pg_database("eoffice_m0013") as url:
        db = Database(url)

        async def has_index() -> bool:
            async with db.uow(readonly=True) as uow:
                return bool(await uow.session.scalar(text(
                    "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_documents_sender_trgm'")))

        try:
            await asyncio.to_thread(migrate, url, "0013")
            assert await has_index()
            await asyncio.to_thread(command.downgrade, alembic_config(url), "0012")
            assert not await has_index()
            await asyncio.to_thread(command.upgrade, alembic_config(url), "0013")
            assert await has_index()
        finally:
            await db.dispose()
