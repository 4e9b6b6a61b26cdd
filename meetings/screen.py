"""The room screen (#20): a read-only display on the wall of the meeting room, after OpenSlides' projector.

It shows the current agenda item, the page the presenter shows, who has the floor and their time left,
the live vote count and the published result, and the quorum. With the speaker: the question they registered
(not under a confidential item) and, in a council, their delegation's speaking budget.

It is opened by a signed link, one per meeting, that the chair or secretary makes, copies from the meeting's
page and resets (the old link and the screens open with it stop at once: ``screen.reset`` on the room topic
makes every hub check again).

The link is ``/screen/{meeting_id}.{nonce}.{hmac}``: the nonce is kept on the meeting, the HMAC is keyed by
the server's secret key, so the database alone cannot make a link and resetting the nonce ends the old one.
The screen is not a person: whatever it shows is safe for anyone in the room. A confidential item shows
«Nội dung mật» and nothing of it (title, documents, presented pages, polls); a poll's voters never appear
(counts only, and a secret poll has no live tally at all).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy import select

from eoffice import audit
from eoffice.org import User
from meetings import rules, topics
from meetings import voting_rules as vr
from meetings.agenda import items_of
from meetings.attendance import quorum_of
from meetings.meetings import get_context, user_names
from meetings.schema import AgendaItem, Document, DocumentVersion, Meeting, Poll, SpeakerRequest
from meetings.speakers import queue_view
from meetings.voting import live_tally, public_view, results_visible
from storage.db import UnitOfWork, utcnow
from storage.errors import NotFound

CONFIDENTIAL = "Nội dung mật"
RESET_EVENT = "screen.reset"
SHOWN_STATES = (vr.State.OPEN, vr.State.CLOSED, vr.State.PUBLISHED)
_TOKEN = re.compile(r"^(\d{1,12})\.([A-Za-z0-9_-]{16,64})\.([0-9a-f]{32})$")


def sign(key: str, meeting_id: int, nonce: str) -> str:
    mac = hmac.new(key.encode(), f"room-screen|{meeting_id}|{nonce}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{meeting_id}.{nonce}.{mac}"


def token_of(key: str, m: Meeting) -> str | None:
    return sign(key, m.id, m.screen_nonce) if m.screen_nonce else None


def viewer(meeting_id: int) -> User:
    """The principal a screen's socket runs as: not a stored account (id 0), never given a user's rights."""
    return User(id=0, username=f"screen-{meeting_id}", full_name="Màn hình phòng họp", roles=[], active=True)


# ---------------------------------------------------------------- the link


async def link(uow: UnitOfWork, actor: User, meeting_id: int, key: str) -> str | None:
    """The current link's token for the chair or secretary (None: no link made or turned off)."""
    ctx = await get_context(uow, actor, meeting_id)
    ctx.access.require_control()
    return token_of(key, ctx.meeting)


async def reset(uow: UnitOfWork, actor: User, meeting_id: int, key: str) -> str:
    """A new link (the previous one and every screen open with it stop at once); chair or secretary."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_control()
    m = ctx.meeting
    had = m.screen_nonce is not None
    m.screen_nonce = secrets.token_urlsafe(18)
    await audit.record(uow, actor, "meeting.screen.reset", "meeting", m.id, replaced=had)
    uow.emit(topics.room(m.id), RESET_EVENT)
    return sign(key, m.id, m.screen_nonce)


async def revoke(uow: UnitOfWork, actor: User, meeting_id: int) -> None:
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    ctx.access.require_control()
    if ctx.meeting.screen_nonce is None:
        return
    ctx.meeting.screen_nonce = None
    await audit.record(uow, actor, "meeting.screen.revoke", "meeting", meeting_id)
    uow.emit(topics.room(meeting_id), RESET_EVENT)


async def meeting_for(uow: UnitOfWork, key: str, token: str) -> Meeting:
    """The meeting a token opens, or NotFound (the same for a forged, reset or turned-off link)."""
    found = _TOKEN.match(token or "")
    m = await uow.session.get(Meeting, int(found.group(1))) if found else None
    if (
        found is None
        or m is None
        or not m.screen_nonce
        or not hmac.compare_digest(sign(key, m.id, m.screen_nonce), token)
        or m.state in (rules.State.DRAFT, rules.State.CANCELLED)
    ):
        raise NotFound("Đường dẫn màn hình phòng họp không còn hiệu lực.")
    return m


# ---------------------------------------------------------------- what the screen shows


async def _shown_item(uow: UnitOfWork, item_id: int | None) -> bool:
    """Whether content under this item (None: the meeting as a whole) may be on the screen."""
    if item_id is None:
        return True
    item = await uow.session.get(AgendaItem, item_id)
    return item is not None and not item.confidential


async def presented_version(uow: UnitOfWork, m: Meeting) -> DocumentVersion | None:
    """The version the presenter shows, when the screen may show it."""
    p = m.presentation or {}
    if m.presenter_id is None or not p.get("version_id"):
        return None
    version = await uow.session.get(DocumentVersion, int(p["version_id"]))
    doc = await uow.session.get(Document, version.document_id) if version else None
    if version is None or doc is None or doc.meeting_id != m.id or not await _shown_item(uow, doc.item_id):
        return None
    return version


async def _poll(uow: UnitOfWork, m: Meeting) -> dict[str, Any] | None:
    """The open poll, else the last one closed or published: counts, and its result once published."""
    polls = (
        await uow.session.scalars(
            select(Poll).where(Poll.meeting_id == m.id, Poll.state.in_([s.value for s in SHOWN_STATES]))
        )
    ).all()
    if not polls:
        return None
    poll = max(polls, key=lambda p: (p.state == vr.State.OPEN, p.id))
    if not await _shown_item(uow, poll.item_id):
        return {"id": poll.id, "state": poll.state, "restricted": True, "title": CONFIDENTIAL}
    tally = await live_tally(uow, poll) if poll.state == vr.State.OPEN and results_visible(poll, False) else None
    view = public_view(poll, tally=tally)
    if poll.state != vr.State.PUBLISHED:
        view["result"] = None  # a closed poll's result reaches the wall when the chair publishes it
    return view


async def _question(uow: UnitOfWork, request_id: int) -> str:
    """The question the speaker registered (often before the meeting), shown while they have the floor; never
    one about a confidential item."""
    req = await uow.session.get(SpeakerRequest, request_id)
    if req is None or not req.note:
        return ""
    if not await _shown_item(uow, req.item_id) or not await _shown_item(uow, req.note_item_id):
        return ""
    return req.note


async def view(uow: UnitOfWork, m: Meeting) -> dict[str, Any]:
    items = await items_of(uow, m.id)
    current = next((i for i in items if i.id == m.current_item_id), None)
    item = None
    if current is not None:
        secret = current.confidential
        by = (await user_names(uow, {current.presenter_id})).get(current.presenter_id or 0)
        item = {
            "id": current.id,
            "number": items.index(current) + 1,
            "confidential": secret,
            "title": CONFIDENTIAL if secret else current.title,
            "presenter_name": "" if secret else by.full_name if by else current.presenter_name,
        }
    version = await presented_version(uow, m)
    p = m.presentation or {}
    presenter = (
        {
            "version_id": version.id,
            "page": p.get("page") or 1,
            "page_count": version.page_count,
            "zoom": p.get("zoom"),
            "x": p.get("x"),
            "y": p.get("y"),
        }
        if version
        else None
    )
    speakers = await queue_view(uow, m.id, history=1)
    speaking = speakers["speaking"]
    if speaking is not None:
        keys = ("id", "name", "granted_at", "paused_at", "paused_seconds", "time_limit", "delegation")
        speaking = {k: speaking[k] for k in keys}
        speaking["question"] = await _question(uow, speaking["id"])
    return {
        "meeting": {
            "id": m.id,
            "title": m.title,
            "place": m.place,
            "state": m.state,
            "state_label": rules.STATE_LABELS[rules.State(m.state)],
        },
        "item": item,
        "items": len(items),
        "presenter": presenter,
        "speaking": speaking,
        "queue": [r["name"] for r in speakers["queue"][:5]],
        "quorum": (await quorum_of(uow, m)).public(),
        "poll": await _poll(uow, m),
        "server_time": utcnow().isoformat(),
    }
