"""Video conferencing in the meeting room: who joins the media room as whom, mutes and the video floor.

Services check permission, write the audit entry and queue the event on the meeting topic, like every other
service; the caller commits and then carries the change out on the media room (``meetings.sfu.registry``), which
lives in the server process. Media ids: ``site:{id}`` for a remote site (điểm cầu) joined by its operator,
``user:{id}`` for anyone else.

Events on ``meeting:{id}``:

- ``video.muted`` [participant, kind, muted, by_chair] a site or person muted or unmuted (camera or microphone).
- ``video.floor`` [participant, name, unmuted] the chair gave the floor: that video becomes the main view
  (``participant`` None: the main view follows the speakers' queue and the voice again), and that site's
  microphone is opened (``unmuted``: it was muted; a ``video.muted`` event says so too). The site shows a cue.
- ``video.muted_all`` [participants] the chair muted every connected microphone but the floor holder's and the
  chair's own, as imposed mutes (one action, one audit entry).

Where the state is kept: mutes, who imposed them and the floor are rebuilt from the meeting's audit entries
(:func:`media_state`). Every change writes one in its transaction, the log is never pruned and is the same for
every server process, so a media room reopened after everyone left, after a restart, or in another process starts
where the meeting was; a site muted by the chair does not come back unmuted by reconnecting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from eoffice import audit
from eoffice.audit import AuditEntry
from eoffice.org import User
from meetings import rules, schema, speakers, topics
from meetings.meetings import get_context
from meetings.rules import Access, SpeakerState, State
from meetings.schema import Site
from storage.db import UnitOfWork
from storage.errors import Conflict, Forbidden, Invalid, NotFound

KINDS = ("audio", "video")
MEDIA_ACTIONS = ("meeting.video.mute", "meeting.video.unmute", "meeting.video.floor", "meeting.video.mute_all")
KIND_LABELS = {"audio": "micrô", "video": "camera"}
MEDIA_STATES = {State.INVITED, State.IN_PROGRESS}  # sites test their link before the meeting starts
_MEDIA_ID = re.compile(r"^(site|user):(\d+)$")


@dataclass(frozen=True)
class Identity:
    """Who a user is in the media room of one meeting."""

    media_id: str
    name: str
    user_id: int
    site_id: int | None
    controller: bool


def parse_media_id(media_id: object) -> tuple[str, int]:
    m = _MEDIA_ID.match(media_id) if isinstance(media_id, str) else None
    if m is None:
        raise Invalid("Mã điểm cầu/người dự họp không hợp lệ.", field="participant")
    return m.group(1), int(m.group(2))


def may_mute(access: Access, own_media_id: str, target: str, muted: bool, imposed: bool) -> bool:
    """The chair and the secretary mute and unmute anyone; a site or person mutes itself, and unmutes itself
    unless the chair imposed the mute."""
    if access.controller:
        return True
    if target != own_media_id:
        return False
    return muted or not imposed


async def identity(uow: UnitOfWork, user: User, meeting_id: int) -> Identity:
    """Who ``user`` joins the media room as; refuses anyone the room's access rules keep out."""
    ctx = await get_context(uow, user, meeting_id)
    access = ctx.access
    if not access.can_view:
        raise Forbidden("Bạn không tham dự cuộc họp này.")
    if State(ctx.meeting.state) not in MEDIA_STATES:
        raise Conflict("Cuộc họp chưa mở hoặc đã kết thúc: không có truyền hình trực tuyến.",
                       state=ctx.meeting.state)
    if access.sites and not access.controller:
        site = await uow.session.get(Site, min(access.sites))
        assert site is not None
        return Identity(f"site:{site.id}", site.name, user.id, site.id, False)
    return Identity(f"user:{user.id}", user.full_name, user.id, None, access.controller)


async def require_link_view(uow: UnitOfWork, user: User, meeting_id: int) -> None:
    """Only the chair and the secretary see the sites' link quality (the control view's panel)."""
    ctx = await get_context(uow, user, meeting_id)
    ctx.access.require_view()
    ctx.access.require_control()


async def _own_media_id(uow: UnitOfWork, user: User, meeting_id: int) -> tuple[Access, str]:
    ctx = await get_context(uow, user, meeting_id, lock=True)
    ctx.access.require_view()
    if ctx.access.sites and not ctx.access.controller:
        return ctx.access, f"site:{min(ctx.access.sites)}"
    return ctx.access, f"user:{user.id}"


@dataclass
class MediaState:
    """What a meeting's media room starts from: who is muted (media id, kind), which of those mutes the chair
    imposed, and whose video has the floor."""

    muted: set[tuple[str, str]]
    imposed: set[tuple[str, str]]
    floor: str | None


async def media_state(uow: UnitOfWork, meeting_id: int) -> MediaState:
    """Mutes and the floor as the meeting's audit entries record them (see the module docstring)."""
    state = MediaState(set(), set(), None)
    rows = await uow.session.execute(
        select(AuditEntry.action, AuditEntry.data)
        .where(AuditEntry.action.in_(MEDIA_ACTIONS), AuditEntry.object_type == "meeting",
               AuditEntry.object_id == str(meeting_id))
        .order_by(AuditEntry.seq))
    for action, data in rows:
        if action == "meeting.video.floor":
            state.floor = data.get("participant")
            continue
        if action == "meeting.video.mute_all":
            for participant in data.get("participants") or []:
                state.muted.add((str(participant), "audio"))
                state.imposed.add((str(participant), "audio"))
            continue
        key = (str(data.get("participant")), str(data.get("kind")))
        if action == "meeting.video.mute":
            state.muted.add(key)
            if data.get("by_chair"):
                state.imposed.add(key)  # a site's own mute on top of the chair's leaves the chair's in force
        else:
            state.muted.discard(key)
            state.imposed.discard(key)
    return state


async def set_muted(uow: UnitOfWork, actor: User, meeting_id: int, *, participant: str, kind: str, muted: bool,
                    imposed: bool | None = None) -> bool:
    """Mute or unmute a participant's camera or microphone. ``imposed``: the current mute was the chair's (None:
    as the meeting's record says). Returns whether the chair (or secretary) did it, which makes the mute imposed."""
    if kind not in KINDS:
        raise Invalid("Chỉ tắt/bật được micrô (audio) hoặc camera (video).", field="kind")
    parse_media_id(participant)
    access, own = await _own_media_id(uow, actor, meeting_id)
    if imposed is None:
        imposed = (participant, kind) in (await media_state(uow, meeting_id)).imposed
    if not may_mute(access, own, participant, muted, imposed):
        if participant == own:
            raise Forbidden(f"Chủ trì đã tắt {KIND_LABELS[kind]} của bạn; chỉ chủ trì hoặc thư ký bật lại được.")
        raise Forbidden("Chỉ chủ trì hoặc thư ký được tắt/bật micrô, camera của điểm cầu khác.")
    by_chair = access.controller and participant != own
    await audit.record(uow, actor, "meeting.video.mute" if muted else "meeting.video.unmute", "meeting", meeting_id,
                       participant=participant, kind=kind, by_chair=by_chair)
    uow.emit(topics.room(meeting_id), "video.muted", participant=participant, kind=kind, muted=bool(muted),
             by_chair=by_chair)
    return by_chair


async def mute_all(uow: UnitOfWork, actor: User, meeting_id: int, *, participants: list[str]) -> list[str]:
    """The chair (or secretary) mutes the microphones of ``participants`` (those connected), all but the floor
    holder's and the actor's own, as imposed mutes: a site cannot lift them. Returns who was muted."""
    for participant in participants:
        parse_media_id(participant)
    access, own = await _own_media_id(uow, actor, meeting_id)
    access.require_control()
    state = await media_state(uow, meeting_id)
    targets = sorted({p for p in participants
                      if p not in (own, state.floor) and (p, "audio") not in state.imposed})
    if targets:
        await audit.record(uow, actor, "meeting.video.mute_all", "meeting", meeting_id, participants=targets)
        uow.emit(topics.room(meeting_id), "video.muted_all", participants=targets)
    return targets


async def give_floor(uow: UnitOfWork, actor: User, meeting_id: int, *, participant: str | None,
                     name: str = "") -> tuple[int | None, bool]:
    """The chair makes ``participant``'s video the main view (None: back to following the queue and the voice),
    and opens its microphone (lifting the chair's mute, if any): whoever has the floor is heard.

    Tied to the speakers' queue: when that site or person is waiting in it, their turn is granted too (the queue's
    own audit and ``speakers.changed`` event). Returns the granted request id, if any, and whether the
    microphone was muted (and is now open)."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_control()
    rules.require_live(ctx.meeting.state)
    granted: int | None = None
    if participant is not None:
        kind, ident = parse_media_id(participant)
        q = select(schema.SpeakerRequest.id).where(
            schema.SpeakerRequest.meeting_id == meeting_id,
            schema.SpeakerRequest.state == SpeakerState.WAITING)
        if kind == "site":
            site = await uow.session.get(Site, ident)
            if site is None or site.meeting_id != meeting_id:
                raise NotFound("Không tìm thấy điểm cầu.")
            q = q.where(schema.SpeakerRequest.site_id == ident)
            name = name or site.name
        else:
            q = q.where(schema.SpeakerRequest.user_id == ident, schema.SpeakerRequest.site_id.is_(None))
        request_id = await uow.session.scalar(q.order_by(schema.SpeakerRequest.position).limit(1))
        if request_id is not None:
            await speakers.grant(uow, actor, request_id)
            granted = request_id
    unmuted = False
    if participant is not None and (participant, "audio") in (await media_state(uow, meeting_id)).muted:
        await audit.record(uow, actor, "meeting.video.unmute", "meeting", meeting_id, participant=participant,
                           kind="audio", by_chair=True)
        uow.emit(topics.room(meeting_id), "video.muted", participant=participant, kind="audio", muted=False,
                 by_chair=True)
        unmuted = True
    await audit.record(uow, actor, "meeting.video.floor", "meeting", meeting_id, participant=participant,
                       request_id=granted)
    uow.emit(topics.room(meeting_id), "video.floor", participant=participant, name=name[:300], unmuted=unmuted)
    return granted, unmuted
