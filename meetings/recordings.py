"""Recording the video conference: who may record, start and stop, and the recorded files in the meeting archive.

The SFU writes the files (``meetings.sfu.recording``: one WebM per track, no re-encoding); these services decide and
record. Like mutes and the floor (``meetings.video``), whether the meeting is being recorded and who may record are
rebuilt from the meeting's audit entries (:func:`recording_state`), so a media room that opens while the meeting is
being recorded (after everyone left, a restart, another process) starts recording too.

Who may record is the chair's setting (``meeting.recording.policy``): the chair only (the default), or the chair and
the secretary. The files are for the people who prepare and run the meeting (organiser, chair, secretary).

Events on ``meeting:{id}`` (every participant sees them: recording is announced to all):

- ``recording.started`` [session, by, started_at] / ``recording.stopped`` [session, by]
- ``recording.policy`` [who] ``chair`` or ``chair_secretary``
- ``recordings.changed`` [recording_id] a recorded file was added to the archive
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from eoffice import audit
from eoffice.audit import AuditEntry
from eoffice.org import User
from meetings import rules, topics
from meetings.meetings import get_context
from meetings.rules import Access
from meetings.schema import Recording
from storage.db import UnitOfWork
from storage.errors import Conflict, Forbidden, Invalid, NotFound

POLICIES = ("chair", "chair_secretary")
RECORDING_ACTIONS = ("meeting.recording.start", "meeting.recording.stop", "meeting.recording.policy")


@dataclass
class RecordingState:
    session: str | None  # the running recording, None when not recording
    started_at: str | None
    policy: str

    @property
    def active(self) -> bool:
        return self.session is not None

    def public(self) -> dict[str, Any]:
        return {"recording": self.active, "session": self.session, "started_at": self.started_at,
                "policy": self.policy}


def may_record(access: Access, policy: str) -> bool:
    return access.chair or (access.secretary and policy == "chair_secretary")


async def recording_state(uow: UnitOfWork, meeting_id: int) -> RecordingState:
    state = RecordingState(None, None, "chair")
    rows = await uow.session.execute(
        select(AuditEntry.action, AuditEntry.data, AuditEntry.at)
        .where(AuditEntry.action.in_(RECORDING_ACTIONS), AuditEntry.object_type == "meeting",
               AuditEntry.object_id == str(meeting_id))
        .order_by(AuditEntry.seq))
    for action, data, at in rows:
        if action == "meeting.recording.policy":
            state.policy = str(data.get("who", "chair"))
        elif action == "meeting.recording.start":
            state.session, state.started_at = str(data.get("session")), at.isoformat()
        else:
            state.session = state.started_at = None
    return state


async def set_policy(uow: UnitOfWork, actor: User, meeting_id: int, who: str) -> RecordingState:
    """The chair decides who may start and stop recording."""
    if who not in POLICIES:
        raise Invalid("Chọn «chair» (chỉ chủ trì) hoặc «chair_secretary» (chủ trì và thư ký).", field="who")
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_view()
    if not ctx.access.chair:
        raise Forbidden("Chỉ chủ trì quyết định ai được ghi hình cuộc họp.")
    await audit.record(uow, actor, "meeting.recording.policy", "meeting", meeting_id, who=who)
    uow.emit(topics.room(meeting_id), "recording.policy", who=who)
    state = await recording_state(uow, meeting_id)
    state.policy = who
    return state


async def _require_recorder(uow: UnitOfWork, actor: User, meeting_id: int, *, live: bool) -> RecordingState:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_view()
    state = await recording_state(uow, meeting_id)
    if not may_record(ctx.access, state.policy):
        who = "chủ trì hoặc thư ký" if state.policy == "chair_secretary" else "chủ trì"
        raise Forbidden(f"Chỉ {who} được ghi hình cuộc họp.")
    if live:
        rules.require_live(ctx.meeting.state)
    return state


async def start(uow: UnitOfWork, actor: User, meeting_id: int) -> RecordingState:
    """Start recording (every site is told: event, badge). Conflict when it is already recording."""
    state = await _require_recorder(uow, actor, meeting_id, live=True)
    if state.active:
        raise Conflict("Cuộc họp đang được ghi hình.")
    session = uuid.uuid4().hex
    await audit.record(uow, actor, "meeting.recording.start", "meeting", meeting_id, session=session)
    started_at = dt.datetime.now(dt.UTC).isoformat()
    uow.emit(topics.room(meeting_id), "recording.started", session=session, by=actor.full_name, started_at=started_at)
    return RecordingState(session, started_at, state.policy)


async def stop(uow: UnitOfWork, actor: User, meeting_id: int) -> RecordingState:
    """Stop recording (also after the meeting ended: a recording left running can always be stopped)."""
    state = await _require_recorder(uow, actor, meeting_id, live=False)
    if not state.active:
        raise Conflict("Cuộc họp không đang được ghi hình.")
    await audit.record(uow, actor, "meeting.recording.stop", "meeting", meeting_id, session=state.session)
    uow.emit(topics.room(meeting_id), "recording.stopped", session=state.session, by=actor.full_name)
    return RecordingState(None, None, state.policy)


async def add_file(uow: UnitOfWork, meeting_id: int, *, session: str, participant: str, name: str, kind: str,
                   codec: str, blob_key: str, size: int, content_type: str, started_at: dt.datetime,
                   session_started_at: dt.datetime, duration: float, frames: int) -> Recording:
    """A finished track file, already in the blob store, joins the meeting's archive."""
    offset = max(0, round((started_at - session_started_at).total_seconds() * 1000))
    row = Recording(meeting_id=meeting_id, session=session, participant=participant, name=name[:300], kind=kind,
                    codec=codec, blob_key=blob_key, size=size, content_type=content_type, started_at=started_at,
                    session_started_at=session_started_at, offset_ms=offset, duration_ms=round(duration * 1000),
                    frames=frames)
    uow.session.add(row)
    await uow.session.flush()
    uow.emit(topics.room(meeting_id), "recordings.changed", recording_id=row.id)
    return row


async def _require_archive(uow: UnitOfWork, user: User, meeting_id: int) -> None:
    ctx = await get_context(uow, user, meeting_id)
    ctx.access.require_view()
    if not ctx.access.manager:
        raise Forbidden("Chỉ người tổ chức, chủ trì hoặc thư ký xem được bản ghi hình cuộc họp.")


async def list_files(uow: UnitOfWork, user: User, meeting_id: int) -> list[dict[str, Any]]:
    await _require_archive(uow, user, meeting_id)
    rows = await uow.session.scalars(
        select(Recording).where(Recording.meeting_id == meeting_id)
        .order_by(Recording.session_started_at, Recording.offset_ms, Recording.id))
    return [r.public() for r in rows]


async def get_file(uow: UnitOfWork, user: User, meeting_id: int, recording_id: int) -> Recording:
    await _require_archive(uow, user, meeting_id)
    row = await uow.session.get(Recording, recording_id)
    if row is None or row.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy bản ghi hình.")
    return row
