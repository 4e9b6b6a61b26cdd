"""The audit chain: ``record_many`` writes what as many ``record`` calls would, in three statements."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import event, select, text

from eoffice import audit
from eoffice.org import Role, User
from storage.db import Database


async def _verify(db: Database) -> audit.Verification:
    async with db.uow() as uow:
        return await audit.verify(uow.session)


async def _entries(db: Database) -> list[audit.AuditEntry]:
    async with db.uow() as uow:
        return list((await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq))).all())


def _voter(i: int) -> User:
    return User(id=1000 + i, username=f"daibieu{i}", full_name=f"Đại biểu Nguyễn Văn {i}", roles=[Role.SPECIALIST])


async def test_record_many_chains_in_order_and_verifies(db: Database) -> None:
    async with db.uow() as uow:
        await audit.record(uow, None, "poll.open", "poll", 7, meeting_id=3, title="Thông qua Nghị quyết")
        await uow.commit()
    async with db.uow() as uow:
        rows = await audit.record_many(uow, [
            audit.Entry(_voter(i), "poll.vote", "poll", 7, data={"participant_id": i, "choice": {"v": "yes"},
                                                                 "ghi_chú": "Ủy ban nhân dân huyện Đông Triều"})
            for i in range(5)])
        await uow.commit()
    assert [r["seq"] for r in rows] == [2, 3, 4, 5, 6]
    async with db.uow() as uow:
        await audit.record(uow, "cli", "poll.close", "poll", 7)
        await uow.commit()
    entries = await _entries(db)
    assert [e.seq for e in entries] == list(range(1, 8))
    assert [e.action for e in entries] == ["poll.open", *["poll.vote"] * 5, "poll.close"]
    assert entries[3].actor_name == "daibieu2" and entries[3].actor_id == 1002
    assert entries[3].data["ghi_chú"] == "Ủy ban nhân dân huyện Đông Triều"
    assert entries[6].actor_name == "cli"
    for prev, e in itertools.pairwise(entries):
        assert e.prev_hash == prev.hash
        assert audit.entry_hash(e, audit.chain_key(db.url)) == e.hash
    result = await _verify(db)
    assert result.ok and result.checked == 7


async def test_record_many_is_three_statements_whatever_the_count(db: Database) -> None:
    async with db.uow() as uow:
        await audit.record(uow, None, "test.first")  # the head row exists from here on
        await uow.commit()
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.uow() as uow:
            await audit.record_many(uow, [audit.Entry(None, "test.write", "thing", i) for i in range(300)])
            await uow.commit()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    writes = [s for s in seen if s in ("INSERT", "UPDATE")]
    assert writes == ["UPDATE", "INSERT", "UPDATE"]
    assert (await _verify(db)).checked == 301


async def test_record_many_of_nothing_writes_nothing(db: Database) -> None:
    async with db.uow() as uow:
        assert await audit.record_many(uow, []) == []
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.session.get(audit.AuditHead, 1) is None
    assert (await _verify(db)).ok


async def test_concurrent_batches_and_single_entries_never_fork_the_chain(db: Database) -> None:
    async def batch(i: int) -> None:
        async with db.uow() as uow:
            await audit.record_many(uow, [audit.Entry(None, "test.batch", "thing", f"{i}.{k}") for k in range(7)])
            await uow.commit()

    async def single(i: int) -> None:
        async with db.uow() as uow:
            await audit.record(uow, None, "test.single", "thing", i, note="Công văn số " + str(i))
            await uow.commit()

    await asyncio.gather(*(batch(i) if i % 2 else single(i) for i in range(16)))
    result = await _verify(db)
    assert result.ok and result.checked == 8 * 7 + 8
    entries = await _entries(db)
    # the entries of one batch are consecutive: a batch moves the head once
    for i in range(1, 16, 2):
        seqs = [e.seq for e in entries if e.object_id.startswith(f"{i}.")]
        assert seqs == list(range(seqs[0], seqs[0] + 7))


async def test_a_rolled_back_batch_leaves_no_trace(db: Database) -> None:
    async with db.uow() as uow:
        await audit.record_many(uow, [audit.Entry(None, "test.lost", "thing", i) for i in range(3)])
        # no commit: rolled back
    async with db.uow() as uow:
        await audit.record(uow, None, "test.kept")
        await uow.commit()
    entries = await _entries(db)
    assert [(e.seq, e.action) for e in entries] == [(1, "test.kept")]
    assert (await _verify(db)).ok


async def test_a_batch_altered_afterwards_is_reported(db: Database) -> None:
    async with db.uow() as uow:
        await audit.record_many(uow, [audit.Entry(None, "poll.vote", "poll", 1, data={"n": i}) for i in range(4)])
        await uow.commit()
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        else:
            await conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        await conn.execute(text("UPDATE audit_log SET object_id = '2' WHERE seq = 3"))
        if db.dialect == "postgresql":
            await conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    result = await _verify(db)
    assert not result.ok and result.broken_at == 3


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"])
async def test_batched_entries_are_append_only(db: Database, sql: str) -> None:
    async with db.uow() as uow:
        await audit.record_many(uow, [audit.Entry(None, "test.write", "thing", i) for i in range(3)])
        await uow.commit()
    with pytest.raises(Exception, match="append-only"):
        async with db.uow() as uow:
            await uow.session.execute(text(sql))
            await uow.commit()
