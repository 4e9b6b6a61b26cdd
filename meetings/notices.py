"""The meeting room's notifications (issue #21): the personal messages the meeting services already send
(``meetings.meetings.notify``: invitations, substitutions, cancellation), a changed time or place of a meeting
people were invited to (a change and a cancellation are urgent: sent by SMS too), and a poll opened for its voters
(``poll.changed`` with ``opened``). Wired into ``eoffice.notifications.install`` by the web app; each handler turns
one event of a committing unit of work into notifications in that transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from eoffice import notifications as n
from eoffice.registers import AGENCY_TZ
from meetings.meetings import _notify_targets
from meetings.rules import State
from meetings.schema import Meeting, Participant, Poll, PollVoter
from storage.db import UnitOfWork

FIELD_LABELS = {"title": "tên", "starts_at": "thời gian bắt đầu", "ends_at": "thời gian kết thúc", "place": "địa điểm",
                "chair_id": "chủ trì", "secretary_id": "thư ký", "description": "nội dung"}


def local_time(at: dt.datetime) -> str:
    return f"{at.astimezone(AGENCY_TZ):%H:%M %d/%m/%Y}"


async def _personal(uow: UnitOfWork, config: n.Config, topic: str, data: dict[str, Any]) -> None:
    users = await n.topic_users(uow, topic)
    message, url = str(data.get("message", "")), str(data.get("url", ""))
    for user in users:
        if message:
            await n.notify(uow, config, user.id, "meeting", message + ("" if message.endswith(".") else "."), url,
                           urgent=data.get("urgent") is True)


async def _invitees(uow: UnitOfWork, meeting: Meeting) -> set[int]:
    ids: set[int] = set()
    for p in (await uow.session.scalars(select(Participant).where(Participant.meeting_id == meeting.id))).all():
        ids.update(await _notify_targets(uow, p))
        if p.substitute_id:
            ids.add(p.substitute_id)
    ids.update(i for i in (meeting.chair_id, meeting.secretary_id) if i)
    return ids


async def _updated(uow: UnitOfWork, config: n.Config, topic: str, data: dict[str, Any]) -> None:
    fields = [f for f in data.get("fields", []) if f in FIELD_LABELS]
    if not topic.startswith("meeting:") or not topic[8:].isdigit() or not fields:
        return
    meeting = await uow.session.get(Meeting, int(topic[8:]))
    if meeting is None or meeting.invited_at is None or meeting.state not in (State.INVITED, State.IN_PROGRESS):
        return
    what = ", ".join(FIELD_LABELS[f] for f in fields)
    text = f"Cuộc họp {n.quoted(meeting.title)} đã thay đổi {what}: bắt đầu lúc {local_time(meeting.starts_at)}"
    text += f", tại {meeting.place}." if meeting.place else "."
    for uid in sorted(await _invitees(uow, meeting)):
        await n.notify(uow, config, uid, "meeting", text, f"/meetings/{meeting.id}", urgent=True)


async def _poll_opened(uow: UnitOfWork, config: n.Config, topic: str, data: dict[str, Any]) -> None:
    if not data.get("opened") or not topic.startswith("meeting:") or not topic[8:].isdigit():
        return  # another change of a poll; or its item's copy of the opening (the room's is the one)
    poll = await uow.session.get(Poll, data.get("poll_id"))
    if poll is None:
        return
    meeting = await uow.session.get(Meeting, poll.meeting_id)
    title = meeting.title if meeting is not None else ""
    voters = (await uow.session.scalars(select(PollVoter.user_id).where(
        PollVoter.poll_id == poll.id, PollVoter.user_id.is_not(None)))).all()
    for uid in sorted({v for v in voters if v is not None}):  # the voters of a confidential item may see it
        await n.notify(uow, config, uid, "poll",
                       f"Biểu quyết {n.quoted(poll.title)} đã mở trong cuộc họp {n.quoted(title)}: mời bạn biểu quyết.",
                       f"/meetings/{poll.meeting_id}/room")


HANDLERS: dict[str, n.Handler] = {"notification": _personal, "meeting.updated": _updated, "poll.changed": _poll_opened}

__all__ = ["HANDLERS"]
