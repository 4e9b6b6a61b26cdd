import asyncio

import pytest
from sqlalchemy import select, text

from eoffice import audit
from eoffice.org import Unit, UnitKind
from storage.db import Database
from storage.events import events_since


async def test_uow_rolls_back_without_commit(db: Database) -> None:
    async with db.uow() as uow:
        uow.session.add(Unit(code="UBND", name="Ủy ban nhân dân tỉnh Quảng Ninh", kind=UnitKind.PROVINCE))
    async with db.uow() as uow:
        assert (await uow.session.scalars(select(Unit))).all() == []
    async with db.uow() as uow:
        uow.session.add(Unit(code="UBND", name="Ủy ban nhân dân tỉnh Quảng Ninh", kind=UnitKind.PROVINCE))
        await uow.commit()
    async with db.uow() as uow:
        names = (await uow.session.scalars(select(Unit.name))).all()
    assert names == ["Ủy ban nhân dân tỉnh Quảng Ninh"]


async def test_event_sequence_is_per_topic_and_gapless_under_concurrency(db: Database) -> None:
    async def emit(i: int) -> None:
        async with db.uow() as uow:
            uow.emit("meeting:1", "tick", i=i)
            uow.emit(f"user:{i % 3}", "note", i=i)
            await uow.commit()

    await asyncio.gather(*(emit(i) for i in range(30)))
    async with db.uow() as uow:
        replay = await events_since(uow.session, "meeting:1", 0)
        assert replay.complete and replay.last_seq == 30
        assert [e["seq"] for e in replay.events] == list(range(1, 31))
        assert sorted(e["data"]["i"] for e in replay.events) == list(range(30))
        partial = await events_since(uow.session, "meeting:1", 25)
        assert [e["seq"] for e in partial.events] == [26, 27, 28, 29, 30]
        assert (await events_since(uow.session, "user:0", 0)).last_seq == 10


async def test_one_topic_commits_number_gaplessly_under_concurrency(db: Database) -> None:
    """Most commits have one topic and take the prebuilt upsert (storage.events._advance_one)."""
    async def emit(i: int) -> list[int]:
        async with db.uow() as uow:
            for k in range(1 + i % 3):  # 1 to 3 events in the commit
                uow.emit("meeting:2", "tick", i=i, k=k)
            return [e["seq"] for e in await uow.commit()]

    given = await asyncio.gather(*(emit(i) for i in range(30)))
    assert all(seqs == list(range(seqs[0], seqs[0] + len(seqs))) for seqs in given)  # consecutive per commit
    assert sorted(s for seqs in given for s in seqs) == list(range(1, 61))  # 30 commits, 60 events, no gap
    async with db.uow(readonly=True) as uow:
        replay = await events_since(uow.session, "meeting:2", 0)
        assert replay.last_seq == 60 and [e["seq"] for e in replay.events] == list(range(1, 61))


async def test_rolled_back_events_take_no_number(db: Database) -> None:
    async with db.uow() as uow:
        uow.emit("meeting:7", "lost")
    async with db.uow() as uow:
        uow.emit("meeting:7", "kept")
        events = await uow.commit()
    assert [e["seq"] for e in events] == [1]


async def test_audit_chain_concurrent_appends_verify(db: Database) -> None:
    async def write(i: int) -> None:
        async with db.uow() as uow:
            await audit.record(uow, None, "test.write", "thing", i, note="Công văn số " + str(i))
            await uow.commit()

    await asyncio.gather(*(write(i) for i in range(20)))
    async with db.uow() as uow:
        result = await audit.verify(uow.session)
    assert result.ok and result.checked == 20


async def test_audit_log_refuses_update_and_delete(db: Database) -> None:
    async with db.uow() as uow:
        await audit.record(uow, None, "test.write")
        await uow.commit()
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            async with db.uow() as uow:
                await uow.session.execute(text(sql))
                await uow.commit()


async def test_readonly_unit_of_work_reads_and_refuses_to_commit(db: Database) -> None:
    async with db.uow() as uow:
        uow.session.add(Unit(code="SNV", name="Sở Nội vụ", kind=UnitKind.DEPARTMENT))
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        assert (await uow.session.scalars(select(Unit.name))).all() == ["Sở Nội vụ"]
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()


async def test_a_reader_does_not_wait_for_a_writer(db: Database) -> None:
    """On SQLite a read-only unit of work takes no write lock: it reads while a writer holds one."""
    async with db.uow() as writer:
        writer.session.add(Unit(code="DT", name="Thị xã Đông Triều", kind=UnitKind.DISTRICT))
        await writer.session.flush()  # the writer now holds the write lock, uncommitted
        async with db.uow(readonly=True) as reader:
            names = (await asyncio.wait_for(reader.session.scalars(select(Unit.name)), 5)).all()
        assert names == []  # the uncommitted row is not visible
        await writer.commit()


async def test_savepoint_drops_its_writes_and_events_and_the_unit_of_work_goes_on(db: Database) -> None:
    async with db.uow() as uow:
        uow.emit("meeting:3", "kept.before")
        with pytest.raises(ValueError):
            async with uow.savepoint():
                uow.session.add(Unit(code="X", name="Đơn vị sẽ bị hủy", kind=UnitKind.OFFICE))
                await uow.session.flush()
                uow.emit("meeting:3", "dropped")
                raise ValueError("refused")
        uow.session.add(Unit(code="VD", name="Huyện Vân Đồn", kind=UnitKind.DISTRICT))
        events = await uow.commit()
    assert [e["type"] for e in events] == ["kept.before"]
    async with db.uow(readonly=True) as uow:
        assert (await uow.session.scalars(select(Unit.code))).all() == ["VD"]


async def test_after_commit_hooks_run_once_after_the_commit_never_after_a_rollback(db: Database) -> None:
    ran: list[str] = []
    published: list[list[str]] = []

    async def publisher(events: list[dict[str, object]]) -> None:
        published.append([str(e["type"]) for e in events])
        ran.append("published")

    db.publisher = publisher

    async def count_units() -> int:
        async with db.uow(readonly=True) as reader:
            return len((await reader.session.scalars(select(Unit))).all())

    async with db.uow() as uow:
        uow.session.add(Unit(code="UBND", name="Ủy ban nhân dân huyện Đông Triều", kind=UnitKind.DISTRICT))
        uow.emit("unit:1", "unit.created")

        async def woken() -> None:  # an awaitable hook, after the commit: it sees the row
            ran.append(f"async:{await count_units()}")

        uow.after_commit(lambda: ran.append("sync"))
        uow.after_commit(woken)
        assert ran == []  # nothing before the commit
        await uow.commit()
        assert ran == ["published", "sync", "async:1"]  # after publishing, in the order registered
        await uow.commit()  # a second commit: the hooks already ran, they do not run again
    assert ran == ["published", "sync", "async:1"] and published == [["unit.created"]]

    async with db.uow() as uow:  # ends without commit: dropped
        uow.session.add(Unit(code="XA", name="Ủy ban nhân dân xã Bình Khê", kind=UnitKind.COMMUNE))
        uow.after_commit(lambda: ran.append("rolled back"))
    async with db.uow() as uow:  # a fresh unit of work does not inherit them
        await uow.commit()
    assert ran == ["published", "sync", "async:1"] and await count_units() == 1


async def test_after_commit_hook_of_a_failed_savepoint_is_dropped_and_a_failing_hook_keeps_the_commit(
        db: Database) -> None:
    ran: list[str] = []
    async with db.uow() as uow:
        uow.after_commit(lambda: ran.append("kept"))
        with pytest.raises(ValueError):
            async with uow.savepoint():
                uow.after_commit(lambda: ran.append("savepoint"))
                raise ValueError("từ chối")

        def broken() -> None:
            raise RuntimeError("hook hỏng")

        uow.after_commit(broken)
        uow.after_commit(lambda: ran.append("after the broken one"))
        uow.session.add(Unit(code="UBND", name="Ủy ban nhân dân tỉnh Quảng Ninh", kind=UnitKind.PROVINCE))
        await uow.commit()
    assert ran == ["kept", "after the broken one"]
    async with db.uow(readonly=True) as uow:
        assert (await uow.session.scalars(select(Unit.name))).all() == ["Ủy ban nhân dân tỉnh Quảng Ninh"]
