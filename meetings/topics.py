"""WebSocket topics and event types of the meeting room, in one place.

Topics (every one has its own ``seq``; a tablet resumes from the last one it saw):

``meeting:{id}``
    The room. Any participant, substitute, chair, secretary, organiser or remote-site operator may
    subscribe. Events here must be safe for every one of them, so anything about a confidential
    agenda item carries ids only; an authorised client fetches the content over the API.

``meeting:{id}:item:{item_id}``
    Content of one agenda item for the people who may see it (everyone when the item is not
    confidential). ``poll.changed`` with the full view of a poll on a confidential item goes here
    (the room topic gets its redacted view, ``voting.restricted_view``).

``meeting:{id}:control``
    Chair and secretary only: who has not voted yet in a named poll (issue 7), site operator requests
    and media signalling that concerns the control desk (issue 8).

``user:{id}``
    The user's own notifications (invitations, substitutions, tasks from conclusions); later their
    private annotations across their own devices and WebRTC offers/answers addressed to them.

Event types on ``meeting:{id}`` (``data`` fields in brackets):

- ``meeting.updated`` [fields] title, time, place, chair... changed: refetch the meeting.
- ``meeting.state`` [state, at, current_item_id]
- ``participants.changed`` [participant_id] invitation list, a response or a substitute's approval changed.
- ``attendance.changed`` [participant_id, present, method, quorum{present, entitled, needed, met}]
- ``agenda.changed`` [item_ids] items added, edited, reordered or their access changed: refetch.
- ``agenda.current`` [item_id, previous_id, position] everyone's screen moves to this item.
- ``documents.changed`` [item_id, document_id, version_id] new document or version: refetch.
- ``presenter`` [presenter_id, version_id, page, zoom, x, y] follow-the-presenter position (ids only).
- ``speakers.changed`` [queue, speaking] the whole (small) queue, names only.
- ``minutes.changed`` [item_id, revision] ids only; chair and secretary refetch the text.
- ``minutes.state`` [state]
- ``conclusions.changed`` [item_id, conclusion_id] ids only.
- ``poll.changed`` [poll_id, state, poll] (redacted for a confidential item), ``poll.progress`` (``meetings.voting``).
- reserved: ``annotation.*`` (issue 6), ``video.*`` (issue 8).

After ``participants.changed``, ``agenda.changed``, ``meeting.updated`` or ``documents.changed`` the hub
authorises again the subscribers of the meeting's topics and of its documents' annotation topics
(``room.ACCESS_EVENTS``); replays of the room's log are redacted per reader (``room.replay_filter``).
"""

from __future__ import annotations

import re

PREFIX = "meeting:"
_TOPIC = re.compile(r"^meeting:(\d+)(?::(item):(\d+)|:(control))?$")


def room(meeting_id: int) -> str:
    return f"meeting:{meeting_id}"


def item(meeting_id: int, item_id: int) -> str:
    return f"meeting:{meeting_id}:item:{item_id}"


def control(meeting_id: int) -> str:
    return f"meeting:{meeting_id}:control"


def user(user_id: int) -> str:
    return f"user:{user_id}"


def parse(topic: str) -> tuple[int, str, int | None] | None:
    """``(meeting_id, kind, item_id)`` with kind ``room``, ``item`` or ``control``; None if not ours."""
    m = _TOPIC.match(topic)
    if not m:
        return None
    meeting_id = int(m.group(1))
    if m.group(2):
        return meeting_id, "item", int(m.group(3))
    if m.group(4):
        return meeting_id, "control", None
    return meeting_id, "room", None
