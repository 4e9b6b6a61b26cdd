"""Sealing secret ballots while their poll is open, under a key of the poll's own that the close destroys;
reading a poll's ballots unsealed; making the storage forget them after the close (``scrub``).

Each secret poll gets a random AES-256 key when it opens. Only its *wrapped* form is stored
(``meeting_poll_keys``: nonce || AES-GCM(key) under the wrapping key, which is derived from the
server's secret, ``storage.keys``, kept outside the data directory), so a restarted process (even
after ``kill -9``) can go on sealing and later count the ballots. A ballot is stored as
``{"sealed": base64(nonce || AES-256-GCM(choice padded to a length fixed per poll))}`` with a
fresh nonce and the poll id as associated data.

When the poll closes or is cancelled, the closing transaction unseals and counts the ballots,
writes them back in plaintext shuffled (``voting.lifecycle``), then overwrites the key row with
zeros and deletes it (``destroy_key``). After that nothing can open a sealed ballot copied while the
poll was open: the per-poll key was random, and the wrapping key alone gives nothing. On SQLite
``secure_delete`` zeroes the deleted rows in the file and the close is followed by a truncating
WAL checkpoint (``scrub``), so no old page version keeps the wrapped key or the sealed
ballots in commit order; on PostgreSQL ``scrub`` vacuums the dead row versions.

Polls opened before per-poll keys existed (no key row) are sealed with the key the server used
then: derived from the secret directly (``LEGACY_LABEL``).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import uuid
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select, update

from meetings.schema import Poll, PollBallot, PollKey
from storage import keys
from storage.db import Database, UnitOfWork, checkpoint_truncate
from storage.errors import Conflict

log = logging.getLogger(__name__)

WRAP_LABEL = "eoffice.meetings.poll-key-wrap.v2"
LEGACY_LABEL = "eoffice.meetings.secret-ballot.v1"
WRAPPED_SIZE = 12 + 32 + 16  # nonce, key, tag
_PROCESS_KEY = secrets.token_bytes(32)  # for a Database nobody registered a secret for (scripts, unit tests)

KEY_CHANGED = ("Không mở được các phiếu kín của biểu quyết này: khóa bí mật của máy chủ đã thay đổi "
               "từ khi biểu quyết mở. Hãy hủy biểu quyết và biểu quyết lại.")


def _wrapping(db: Database) -> AESGCM:
    return AESGCM(keys.key_for(db.url, WRAP_LABEL) if keys.registered(db.url) else _PROCESS_KEY)


def _aad(poll_id: int) -> bytes:
    return f"poll-key:{poll_id}".encode()


async def create_key(uow: UnitOfWork, poll: Poll) -> None:
    """A new random key for ``poll`` (opening), stored wrapped in the opening transaction."""
    nonce = secrets.token_bytes(12)
    wrapped = nonce + _wrapping(uow.db).encrypt(nonce, AESGCM.generate_key(bit_length=256), _aad(poll.id))
    uow.session.add(PollKey(poll_id=poll.id, wrapped=wrapped))
    await uow.session.flush()


def sealer_from(db: Database, poll_id: int, wrapped: bytes | None) -> AESGCM:
    """The cipher of a poll's ballots given its stored key row (None: a poll opened before migration 0017)."""
    if wrapped is None:
        return AESGCM(keys.key_for(db.url, LEGACY_LABEL) if keys.registered(db.url) else _PROCESS_KEY)
    try:
        return AESGCM(_wrapping(db).decrypt(wrapped[:12], wrapped[12:], _aad(poll_id)))
    except InvalidTag:
        raise Conflict(KEY_CHANGED) from None


async def sealer(uow: UnitOfWork, poll: Poll) -> AESGCM:
    wrapped = await uow.session.scalar(select(PollKey.wrapped).where(PollKey.poll_id == poll.id))
    return sealer_from(uow.db, poll.id, wrapped)


async def destroy_key(uow: UnitOfWork, poll: Poll) -> None:
    """The poll has ended: overwrite its key row with zeros, then delete it (in the closing transaction)."""
    await uow.session.execute(update(PollKey).where(PollKey.poll_id == poll.id).values(wrapped=bytes(WRAPPED_SIZE))
                              .execution_options(synchronize_session=False))
    await uow.session.execute(delete(PollKey).where(PollKey.poll_id == poll.id)
                              .execution_options(synchronize_session=False))


def sealed_size(poll: Poll) -> int:
    """Every sealed ballot of a poll has this plaintext length (so a length says nothing about a choice)."""
    longest = len(json.dumps({"r": list(range(1, len(poll.options) + 1))}, separators=(",", ":")))
    return max(64, -(-(longest + 16) // 64) * 64)


def seal(cipher: AESGCM, poll: Poll, choice: dict[str, Any]) -> dict[str, Any]:
    plain = json.dumps(choice, separators=(",", ":")).encode()
    size = max(sealed_size(poll), -(-len(plain) // 64) * 64)
    nonce = secrets.token_bytes(12)
    data = cipher.encrypt(nonce, plain.ljust(size), f"poll:{poll.id}".encode())
    return {"sealed": base64.b64encode(nonce + data).decode()}


def unseal(cipher: AESGCM, poll: Poll, stored: dict[str, Any]) -> dict[str, Any]:
    if "sealed" not in stored:
        return stored  # written in plaintext (a named poll, a closed one, or cast before sealing existed)
    raw = base64.b64decode(stored["sealed"])
    try:
        plain = cipher.decrypt(raw[:12], raw[12:], f"poll:{poll.id}".encode())
    except InvalidTag:
        raise Conflict(KEY_CHANGED) from None
    out: dict[str, Any] = json.loads(plain)
    return out


# ---------------------------------------------------------------- ballots of a poll


def new_ballot_id() -> str:
    return uuid.uuid4().hex


def use_ballot_key(db: Database, secret_key: str) -> None:
    """Wrap the ballot keys of secret polls written through ``db`` with a key derived from the application's
    secret (without one, this process's own random key is used: ``meetings.voting``, residual risk 5)."""
    keys.register(db.url, secret_key)


def stored_choice(cipher: AESGCM | None, poll: Poll, choice: dict[str, Any]) -> dict[str, Any]:
    return seal(cipher, poll, choice) if poll.secret and cipher is not None else choice


async def cipher_for(uow: UnitOfWork, poll: Poll) -> AESGCM | None:
    return await sealer(uow, poll) if poll.secret else None


async def ballots_of(uow: UnitOfWork, poll: Poll) -> list[tuple[dict[str, Any], int]]:
    """The poll's ballots as (choice, weight), unsealed."""
    rows = (await uow.session.execute(
        select(PollBallot.choice, PollBallot.weight).where(PollBallot.poll_id == poll.id))).all()
    if not poll.secret:
        return [(c, w) for c, w in rows]
    cipher = await sealer(uow, poll)
    return [(unseal(cipher, poll, c), w) for c, w in rows]


async def scrub(db: Database) -> None:
    """After a secret poll closed (and at start-up): make the storage forget the sealed ballots and the
    destroyed poll key. PostgreSQL: vacuum their dead row versions. SQLite: copy the write-ahead log into
    the database file and truncate it (the file's deleted rows are already zeroed by ``secure_delete``)."""
    if db.dialect == "sqlite":
        if not await checkpoint_truncate(db):
            log.warning("the write-ahead log was busy; secret ballots' old pages stay in it until the next scrub")
        return
    if db.dialect != "postgresql":
        return
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM meeting_poll_ballots")
        await conn.exec_driver_sql("VACUUM meeting_poll_keys")

