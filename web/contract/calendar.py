"""Contract of the calendar API (issue #21): a person's meeting calendar, the leaders' weekly work calendar,
the secret iCalendar feed URLs."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from web.contract.core import Body as _Body
from web.contract.core import DateTime, Flag, Ids, Out, require, text


class CalendarMeeting(Out):
    id: int
    title: str
    place: str
    starts_at: str
    ends_at: str | None
    date: str
    time: str
    state: str
    state_label: str
    cancelled: bool
    confidential: bool


class CalendarDay(Out):
    date: str
    label: str
    weekday: str
    meetings: list[CalendarMeeting]


class MeetingCalendar(Out):
    """A person's meetings over a week or a month, day by day (local dates, Asia/Ho_Chi_Minh)."""

    view: str
    to: str
    prev: str
    next: str
    days: list[CalendarDay]
    meetings: list[CalendarMeeting]


class Clash(Out):
    """A leader already in another meeting at that time (a warning, not a refusal)."""

    user_id: int
    name: str
    meeting_id: int
    title: str
    starts_at: str
    message: str


class Conflicts(Out):
    conflicts: list[Clash]


class WorkDay(Out):
    date: str
    label: str
    weekday: str
    items: list[dict[str, Any]]


class WorkWeek(Out):
    """One agency's week: entries of the office and the leaders' meetings, day by day."""

    week: str
    id: int | None
    state: str | None
    state_label: str
    public: bool
    revision: int
    visible: bool
    leaders: list[dict[str, Any]]
    days: list[WorkDay]


class WorkEntry(Out):
    id: int
    week_id: int
    starts_at: str
    ends_at: str | None
    leader_ids: list[int]
    content: str
    place: str
    participants: str
    preparing_unit: str
    cancelled: bool
    adjusted: bool
    adjustment: str


class WeekState(Out):
    id: int
    week: str
    state: str
    state_label: str
    public: bool
    revision: int


class FeedStatus(Out):
    personal: bool
    leader: bool


class FeedUrl(Out):
    kind: str
    url: str


# ---- requests ---------------------------------------------------------------------------------


class EntryFields(_Body):
    """starts_at, ends_at (ISO; local time when no offset), leader_ids, content, place, participants,
    preparing_unit."""

    starts_at: DateTime = None
    ends_at: DateTime = None
    leader_ids: Ids | None = None
    content: text(20000) = ""  # type: ignore[valid-type]
    place: text(300) = ""  # type: ignore[valid-type]
    participants: text(5000) = ""  # type: ignore[valid-type]
    preparing_unit: text(300) = ""  # type: ignore[valid-type]


class EntryCreate(EntryFields):
    model_config = ConfigDict(json_schema_extra=require("starts_at", "leader_ids", "content"))


class Publish(_Body):
    public: Flag = False


class PublicFlag(_Body):
    public: Flag = False


