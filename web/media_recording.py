"""The media room's side of recording: start and stop the SFU's files, and store each finished one.

``meetings.recordings`` decides (permission, audit, event); this module makes the meeting's media room in this
process carry it out (``SfuRoom.start_recording``) and, as each track's file is finished (its site left, or the
recording stopped), puts the file in the blob store, adds it to the meeting's archive and deletes the local copy.
A file that could not be stored stays in the recording directory (``EOFFICE_RECORDING_DIR``) for an operator.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
from starlette.applications import Starlette

from meetings import recordings
from meetings.sfu.recording import RecordedTrack
from meetings.sfu.registry import MediaRoom
from storage.blobs import CHUNK_SIZE

log = logging.getLogger(__name__)

MAX_FILE = 8 * 1024 * 1024 * 1024  # bytes: a day of one site's camera at several Mbit/s


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await anyio.to_thread.run_sync(f.read, 16 * CHUNK_SIZE):
            yield chunk


def _sink(app: Starlette, meeting_id: int, session: str,
          session_started_at: dt.datetime) -> Callable[[RecordedTrack], Awaitable[None]]:
    async def store(track: RecordedTrack) -> None:
        info = await app.state.blobs.put(_chunks(track.path), limit=MAX_FILE, content_type=track.content_type)
        async with app.state.db.uow() as uow:
            await recordings.add_file(
                uow, meeting_id, session=session, participant=track.participant, name=track.name, kind=track.kind,
                codec=track.codec, blob_key=info.key, size=info.size, content_type=track.content_type,
                started_at=dt.datetime.fromtimestamp(track.started_at, dt.UTC), session_started_at=session_started_at,
                duration=track.duration, frames=track.frames)
            await uow.commit()
        await anyio.to_thread.run_sync(track.path.unlink)
        log.info("meeting %s: recorded %s %s stored (%d bytes)", meeting_id, track.participant, track.kind, info.size)

    return store


def start(app: Starlette, room: MediaRoom, session: str, started_at: str | None) -> None:
    """Record ``room`` from now on, on the session's time line (it began at ``started_at``, ISO time)."""
    begin = dt.datetime.fromisoformat(started_at) if started_at else dt.datetime.now(dt.UTC)
    directory = Path(app.state.settings.recording_dir) / f"meeting-{room.meeting_id}" / session
    room.sfu.start_recording(directory, session, _sink(app, room.meeting_id, session, begin),
                             started_at=begin.timestamp())


async def stop(room: MediaRoom) -> None:
    """Finish the files and wait until every one is stored."""
    await room.sfu.stop_recording()


async def resume(app: Starlette, room: MediaRoom) -> None:
    """A room opening while the meeting is being recorded records too (once per room, before anyone joins)."""
    if room.sfu.recording is not None or room.recording_checked:
        return
    room.recording_checked = True
    async with app.state.db.uow(readonly=True) as uow:
        state = await recordings.recording_state(uow, room.meeting_id)
    if state.session is not None and room.sfu.recording is None:
        start(app, room, state.session, state.started_at)
