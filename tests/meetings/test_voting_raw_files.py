"""After a secret poll closes, the files on disk cannot link a voter to a choice.

The attacker of this test reads every byte the server left: the SQLite database, its -wal and -shm, the
rest of the data directory and the key directory, and also holds the server's secret (the master key).
Before the close the same search finds the poll's wrapped key and the sealed ballots (so the search
works); after it, none of them is anywhere, the plaintext ballots are stored once each, not in the
order they were cast, and the sealed ballots copied while the poll was open cannot be opened with any
key derived from the master. On PostgreSQL: the poll's key row and its dead versions are gone.
"""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text

from meetings import schema, voting
from meetings.schema import PollBallot
from meetings.voting import sealing
from storage import keys
from tests.meetings.conftest import World, call, cast_one
from tests.meetings.test_voting import crowd, new_poll, open_

OPTIONS = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em"]
VOTERS = 8


def _raw(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _found(files: dict[Path, bytes], needle: bytes) -> list[Path]:
    return [p for p, data in files.items() if needle in data]


async def _vote_one_by_one(world: World, poll_id: int, users: list) -> list[list[int]]:
    """Each voter a distinct full ranking, each vote its own transaction (the order of commits is the order cast)."""
    rankings = [list(r) for r in itertools.islice(itertools.permutations(range(1, len(OPTIONS) + 1)), 0, 97, 12)]
    assert len(rankings) >= VOTERS and len({tuple(r) for r in rankings}) == len(rankings)
    for u, r in zip(users, rankings, strict=False):
        await call(world.db, cast_one, u, poll_id, r)
    return rankings[:VOTERS]


async def _sealed(world: World, poll_id: int) -> tuple[bytes, bytes, list[tuple[str, str]]]:
    """What an insider copies while the poll is open: the wrapped key row, the key, and the sealed ballots."""
    async with world.db.uow() as uow:
        row = await uow.session.get(schema.PollKey, poll_id)
        assert row is not None and len(row.wrapped) == sealing.WRAPPED_SIZE
        wrapped = bytes(row.wrapped)
        ballots = (await uow.session.execute(
            select(PollBallot.id, PollBallot.choice).where(PollBallot.poll_id == poll_id))).all()
    key = sealing._wrapping(world.db).decrypt(wrapped[:12], wrapped[12:], f"poll-key:{poll_id}".encode())
    return wrapped, key, [(i, c["sealed"]) for i, c in ballots]


def _master_cannot_open(url: str, poll_id: int, sealed: list[tuple[str, str]]) -> None:
    """With the server's secret in hand, every key derived from it fails on the ballots copied while open."""
    secret = keys.secret_for(url)
    candidates = [keys.derive(secret, label) for label in (sealing.WRAP_LABEL, sealing.LEGACY_LABEL,
                                                            "eoffice.audit.chain.v2")]
    candidates.append(keys.derive(secret, "").ljust(32, b"\0")[:32])
    for _id, s in sealed:
        raw = base64.b64decode(s)
        for k in candidates:
            with pytest.raises(InvalidTag):
                AESGCM(k).decrypt(raw[:12], raw[12:], f"poll:{poll_id}".encode())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_files_link_no_voter_to_a_choice_after_the_close(
        world: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the server's secret lives in its key directory (here inside tmp_path, so the attacker reads it too)
    monkeypatch.setenv("EOFFICE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.delenv("EOFFICE_SECRET_KEY", raising=False)
    keys.register(db_url, keys.load_secret_key(tmp_path / "var"))
    assert (tmp_path / "keys" / "secret_key").exists()

    m, users = await crowd(world, VOTERS)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True, method="ranked", seats=1, options=OPTIONS)
    await open_(world, poll_id)
    rankings = await _vote_one_by_one(world, poll_id, users)
    wrapped, key, sealed = await _sealed(world, poll_id)
    assert len(sealed) == VOTERS

    # positive control: while the poll is open, the raw files hold the wrapped key and the sealed ballots
    before = _raw(tmp_path)
    assert _found(before, wrapped)
    assert all(_found(before, s.encode()) for _i, s in sealed)

    poll = await call(world.db, voting.close_poll, world.chair, poll_id)
    assert poll.state == "closed" and poll.result["ballots"] == VOTERS
    await voting.scrub(world.db)  # what the server does after a close (and at start-up)

    files = _raw(tmp_path)
    db_file = Path(db_url.removeprefix("sqlite+aiosqlite:///"))
    wal = db_file.with_name(db_file.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the write-ahead log still holds old pages"
    # the poll's key, in every spelling, and its wrapped row are nowhere
    for needle in (wrapped, wrapped[12:], key, key.hex().encode(), base64.b64encode(key)):
        assert _found(files, needle) == [], needle
    # nor any sealed ballot, its id, its nonce or its ciphertext
    for ballot_id, s in sealed:
        raw = base64.b64decode(s)
        for needle in (ballot_id.encode(), s.encode(), s[:24].encode(), raw[:12], raw[12:40]):
            assert _found(files, needle) == [], (ballot_id, needle)
    # each plaintext ballot is stored exactly once (no old copy in commit order), and not in the order cast
    data = files[db_file]
    offsets = []
    for r in rankings:
        needle = json.dumps({"r": r}).encode()
        assert sum(d.count(needle) for d in files.values()) == 1, needle
        offsets.append(data.index(needle))
    on_disk = sorted(range(VOTERS), key=lambda i: offsets[i])
    assert on_disk != list(range(VOTERS)) and on_disk != list(reversed(range(VOTERS)))
    # the key row is gone from the table, and the master key opens none of the ballots copied while open
    async with world.db.uow() as uow:
        assert (await uow.session.execute(text("SELECT count(*) FROM meeting_poll_keys"))).scalar_one() == 0
    _master_cannot_open(db_url, poll_id, sealed)


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_cancelling_a_secret_poll_destroys_its_key(world: World, db_url: str) -> None:
    m, users = await crowd(world, 3)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    await open_(world, poll_id)
    for u in users:
        await call(world.db, cast_one, u, poll_id, "no")
    _wrapped, _key, sealed = await _sealed(world, poll_id)
    await call(world.db, voting.cancel_poll, world.chair, poll_id, "Biểu quyết lại")
    await voting.scrub(world.db)
    async with world.db.uow() as uow:
        assert await uow.session.get(schema.PollKey, poll_id) is None
    _master_cannot_open(db_url, poll_id, sealed)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_postgresql_keeps_no_version_of_the_poll_key_after_the_close(world: World, db_url: str) -> None:
    m, users = await crowd(world, 4)
    poll_id = await new_poll(world, m, quorum_rule="none", secret=True)
    await open_(world, poll_id)
    for u, c in zip(users, ["yes", "no", "abstain", "yes"], strict=True):
        await call(world.db, cast_one, u, poll_id, c)
    wrapped, _key, sealed = await _sealed(world, poll_id)

    async def versions_holding(needle: bytes) -> int:
        """Row versions (live or dead, not yet vacuumed) of meeting_poll_keys whose bytes hold ``needle``."""
        async with world.db.uow() as uow:
            await uow.session.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            pages = (await uow.session.execute(text(
                "SELECT pg_relation_size('meeting_poll_keys') / current_setting('block_size')::int"))).scalar_one()
            n = 0
            for page in range(pages):
                n += (await uow.session.execute(text(
                    "SELECT count(*) FROM heap_page_items(get_raw_page('meeting_poll_keys', :n)) "
                    "WHERE lp_flags = 1 AND position(:w in t_data) > 0"), {"n": page, "w": needle})).scalar_one()
            await uow.commit()
            return int(n)

    assert await versions_holding(wrapped) == 1  # positive control: the open poll's key row
    await call(world.db, voting.close_poll, world.chair, poll_id)
    async with world.db.uow() as uow:
        assert await uow.session.get(schema.PollKey, poll_id) is None
    await voting.scrub(world.db)
    assert await versions_holding(wrapped) == 0
    _master_cannot_open(db_url, poll_id, sealed)
