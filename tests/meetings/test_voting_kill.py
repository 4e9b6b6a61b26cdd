"""kill -9 during an open poll: no acknowledged vote is lost, and the poll goes on after a restart.

A real server process (``uvicorn --factory web.app:create_app``) over the parametrised database
(SQLite and PostgreSQL). Forty delegates vote at once through the HTTP API; after the first
acknowledgements the server gets SIGKILL while other casts are in flight. The delegates use browser
sessions (cookie and CSRF token), as the tablets' voting page does. A new process on the
same database must show every acknowledged vote counted exactly once, refuse those voters a second
vote, accept the others, keep the poll's countdown, and close it with one ballot per voter.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from eoffice import identity
from meetings.schema import Poll, PollBallot, PollVoter
from storage.settings import Settings
from tests.meetings.conftest import World
from tests.meetings.test_voting import crowd
from tests.web.test_ws_redis import Proc, _start, _wait_healthy
from web.auth import CSRF_COOKIE, SESSION_COOKIE, csrf_for, signer

ROOT = Path(__file__).resolve().parents[2]
VOTERS = 40


@pytest.fixture
def server_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EOFFICE_DATABASE_URL": settings.database_url,
        "EOFFICE_BROKER_URL": "memory://",
        "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs",
        "EOFFICE_VAR_DIR": str(tmp_path / "var"),
        "EOFFICE_SECRET_KEY": settings.secret_key,
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(10)


async def token(world: World, user: Any, settings: Settings) -> dict[str, str]:
    """A tablet's credentials: a browser session cookie and its CSRF token (as the voting page sends them)."""
    async with world.db.uow() as uow:
        t = await identity.start_session(uow, user, 1)
        await uow.commit()
    nonce = secrets.token_urlsafe(16)
    return {"Cookie": f"{SESSION_COOKIE}={signer(settings).sign(t).decode()}; {CSRF_COOKIE}={nonce}",
            "X-CSRF-Token": csrf_for(settings, nonce, t)}


async def test_sigkill_loses_no_acknowledged_vote(world: World, server_env: dict[str, str], procs: list[Proc],
                                                  tmp_path: Path, settings: Settings) -> None:
    m, users = await crowd(world, VOTERS)
    chair = await token(world, world.chair, settings)
    tokens = [await token(world, u, settings) for u in users]

    server = _start(server_env, tmp_path / "server-1.log")
    procs.append(server)
    await asyncio.to_thread(_wait_healthy, server)
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post("/api/polls", headers=chair, json={
            "meeting_id": m["meeting_id"], "title": "Thông qua Kế hoạch đầu tư công trung hạn 2026-2030",
            "method": "yes_no_abstain", "quorum_rule": "none", "secret": True})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        r = await c.post(f"/api/polls/{pid}/open", headers=chair, json={"duration_seconds": 3600})
        assert r.status_code == 200, r.text
        closes_at = r.json()["closes_at"]

    acknowledged: set[int] = set()
    failed: set[int] = set()
    enough = asyncio.Event()

    async def vote(i: int) -> None:
        await asyncio.sleep(0.05 * i)  # a stream of votes: some before the kill, some in flight, some after
        if i >= 12:  # on a loaded machine the first answers can come late, all at once: keep casts for the kill
            await enough.wait()
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                r = await c.post(f"/api/polls/{pid}/votes", headers=tokens[i],
                                 json={"choice": ["yes", "no", "abstain"][i % 3]})
            if r.status_code == 201:
                acknowledged.add(i)
                if len(acknowledged) >= 8:
                    enough.set()
            else:
                failed.add(i)
        except httpx.HTTPError:
            failed.add(i)  # the server died under it: not acknowledged

    async def killer() -> None:
        await asyncio.wait_for(enough.wait(), 60)
        os.kill(server.process.pid, signal.SIGKILL)

    await asyncio.gather(killer(), *(vote(i) for i in range(VOTERS)))
    server.process.wait(10)
    assert server.process.returncode == -signal.SIGKILL
    assert 8 <= len(acknowledged) < VOTERS  # killed mid-poll, with casts in flight

    # the database after the crash: every acknowledged vote is there, each once
    async with world.db.uow() as uow:
        voted = set((await uow.session.scalars(select(PollVoter.user_id).where(
            PollVoter.poll_id == pid, PollVoter.voted_at.is_not(None)))).all())
        ballots = await uow.session.scalar(
            select(func.count()).select_from(PollBallot).where(PollBallot.poll_id == pid))
        poll = await uow.session.get(Poll, pid)
        assert poll is not None and poll.state == "open"
    ack_users = {users[i].id for i in acknowledged}
    assert ack_users <= voted
    assert ballots == len(voted) == poll.votes_cast

    # a new process: the poll goes on with its countdown, acknowledged voters cannot vote twice
    server2 = _start(server_env, tmp_path / "server-2.log")
    procs.append(server2)
    await asyncio.to_thread(_wait_healthy, server2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server2.port}", timeout=30) as c:
        view = (await c.get(f"/api/polls/{pid}", headers=chair)).json()
        assert view["state"] == "open" and view["closes_at"] == closes_at and view["cast"] == len(voted)
        for i in range(VOTERS):
            r = await c.post(f"/api/polls/{pid}/votes", headers=tokens[i], json={"choice": "yes"})
            if users[i].id in voted:
                assert r.status_code == 409, r.text
                assert "đã được bỏ" in r.json()["message"]
            else:
                assert r.status_code == 201, r.text
        r = await c.post(f"/api/polls/{pid}/close", headers=chair)
        assert r.status_code == 200, r.text
        result = r.json()["result"]
    assert result["ballots"] == VOTERS and r.json()["cast"] == VOTERS
    assert sum(result["counts"].values()) == VOTERS
