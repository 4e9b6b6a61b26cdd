"""``Hub.close_user``: a socket on another process (another hub on the same broker) closes at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from eoffice import identity
from eoffice.org import User
from storage.db import Database
from storage.pubsub.memory import MemoryBroker
from storage.settings import Settings
from web.hub import CLOSE_REVOKED, Hub


@pytest.fixture
async def two_hubs(settings: Settings) -> AsyncIterator[tuple[Hub, Hub]]:
    broker = MemoryBroker()  # shared, as Redis is between server processes
    dbs = [Database(settings.database_url), Database(settings.database_url)]
    hubs = [Hub(db, broker, replace(settings)) for db in dbs]
    for hub in hubs:
        await hub.start()
    yield hubs[0], hubs[1]
    for hub in hubs:
        await hub.stop()
    await broker.close()
    for db in dbs:
        await db.dispose()


async def _user(db: Database, username: str) -> User:
    async with db.uow() as uow:
        user = await identity.create_user(uow, None, username=username, full_name="Lê Văn Đức",
                                          password="mật-khẩu-dài")
        await uow.commit()
        return user


async def test_close_user_reaches_the_other_hub_and_spares_the_rest(two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    user, other = await _user(a.db, "daibieu"), await _user(a.db, "khac")
    session_one, session_two = ("session", "1" * 64), ("session", "2" * 64)
    on_b = b.connect(user)
    on_b.credential = session_one
    same_user_other_session = b.connect(user)
    same_user_other_session.credential = session_two
    someone_else = b.connect(other)
    someone_else.credential = session_one

    await a.close_user(user.id, "logout", only=[session_one])  # a logout handled by process A
    await asyncio.wait_for(on_b.closed.wait(), 5)
    assert on_b.close_code == CLOSE_REVOKED and on_b.close_reason == "logout" and on_b not in b.connections
    # the close request was handled in order: whatever B had to close is closed by now
    await a.close_user(other.id, "noop", only=[("bearer", "9" * 64)])
    marker = b.connect(user)
    marker.credential = ("bearer", "8" * 64)
    await a.close_user(user.id, "marker", only=[("bearer", "8" * 64)])
    await asyncio.wait_for(marker.closed.wait(), 5)
    assert not same_user_other_session.closed.is_set() and not someone_else.closed.is_set()

    kept = b.connect(user)  # all of the user's sockets but this session's

    kept.credential = session_two
    gone = b.connect(user)
    gone.credential = ("bearer", "7" * 64)
    await a.close_user(user.id, "password changed", keep=session_two)
    await asyncio.wait_for(gone.closed.wait(), 5)
    assert not kept.closed.is_set() and not same_user_other_session.closed.is_set()
    assert not someone_else.closed.is_set()
