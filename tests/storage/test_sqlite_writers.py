"""SQLite writers of one process queue in the process (asyncio), not in SQLite's busy handler."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import text

from storage.db import Database


async def test_the_next_writer_starts_as_soon_as_the_first_commits(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/writers.db")
    stamps: dict[str, float] = {}
    a_in = asyncio.Event()

    async def writer(name: str, hold: float) -> None:
        if name == "b":
            await a_in.wait()  # b asks for the write lock while a holds it
        async with db.uow() as uow:
            await uow.session.execute(text("CREATE TABLE IF NOT EXISTS t (x TEXT)"))  # the write lock
            stamps[f"{name} in"] = time.perf_counter()
            a_in.set()
            await asyncio.sleep(hold)
            await uow.session.execute(text("INSERT INTO t VALUES (:x)"), {"x": "Đông Triều"})
            await uow.commit()
            stamps[f"{name} out"] = time.perf_counter()

    try:
        # SQLite's busy handler would have the second writer asleep in a 100 ms step when the
        # first commits at 240 ms (it wakes around 330 ms)
        await asyncio.gather(writer("a", 0.24), writer("b", 0))
        async with db.uow(readonly=True) as uow:
            assert (await uow.session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    finally:
        await db.dispose()
    assert stamps["a in"] < stamps["a out"] <= stamps["b in"]
    assert stamps["b in"] - stamps["a out"] < 0.04
