"""The tables of the meetings domain, in one place.

Every service module of ``meetings`` (meetings, agenda, documents, annotations, speakers, minutes,
voting, ballot keys) reads and writes these tables; defining them here, apart from the services,
lets a service use another's table without importing that service, so the services import the
schema and never each other in a circle. This module imports no service: only SQLAlchemy, the
storage base and the I/O-free rules (``meetings.rules``, ``meetings.voting_rules``) that give the
column defaults.

Table and column names are those of the migrations (``storage/migrations``); nothing here changes
the database. Secret ballots: ``meeting_poll_ballots`` has no column that could name a voter or a
time (see ``meetings.voting``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# the e-office tables this schema's foreign keys name (users, units, registers, a meeting's work dossier with its
# documents and tasks): registered with the metadata wherever meetings are used, not only where storage.models is
import eoffice.models  # noqa: F401
from meetings import rules
from meetings import voting_rules as vr
from meetings.rules import ParticipantRole, Response, Seat, SpeakerState, State
from storage.db import Base, utcnow

__all__ = [
    "AgendaItem", "Annotation", "AnnotationRecipient", "Conclusion", "Document", "DocumentVersion", "ItemAccess",
    "ItemMinutes", "Meeting", "PageRender", "Participant", "Poll", "PollBallot", "PollKey", "PollVoter",
    "Recording", "Site", "SpeakerRequest", "VotingRight",
]

# ---------------------------------------------------------------- meetings, seats, remote sites


class Meeting(Base):
    __tablename__ = "meetings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(300), default="")
    starts_at: Mapped[dt.datetime] = mapped_column(index=True)
    ends_at: Mapped[dt.datetime | None] = mapped_column()
    state: Mapped[str] = mapped_column(String(20), default=State.DRAFT, index=True)
    quorum_rule: Mapped[str] = mapped_column(String(20), default=rules.QuorumRule.HALF)
    chair_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    secretary_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    invited_at: Mapped[dt.datetime | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    # live room state (in the database, so it survives a restart)
    current_item_id: Mapped[int | None] = mapped_column(Integer)  # meeting_agenda_items.id (no FK: cycle)
    presenter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    presentation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    minutes_state: Mapped[str] = mapped_column(String(20), default="draft")  # draft | approved
    minutes_approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    minutes_approved_at: Mapped[dt.datetime | None] = mapped_column()
    minutes_blob_key: Mapped[str | None] = mapped_column(String(64))  # the approved PDF
    # the minutes' number in the BB series of the issuing agency's register (kept when reopened)
    minutes_register_id: Mapped[int | None] = mapped_column(ForeignKey("registers.id"))
    minutes_number: Mapped[int | None] = mapped_column(Integer)
    minutes_notation: Mapped[str | None] = mapped_column(String(80))  # 12/BB-UBND
    speaking_time: Mapped[int | None] = mapped_column(Integer)  # seconds: default limit of a turn to speak
    screen_nonce: Mapped[str | None] = mapped_column(String(64))  # room screen link (meetings.screen); None: off
    # the work dossier (hồ sơ công việc) the signed minutes are filed in (meetings.dossier)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id", ondelete="SET NULL"))

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "description": self.description, "place": self.place,
            "starts_at": self.starts_at.isoformat(), "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "state": self.state, "state_label": rules.STATE_LABELS[State(self.state)],
            "quorum_rule": self.quorum_rule, "chair_id": self.chair_id, "secretary_id": self.secretary_id,
            "created_by": self.created_by, "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "current_item_id": self.current_item_id, "minutes_state": self.minutes_state,
            "speaking_time": self.speaking_time,
        }


class Site(Base):
    """A remote site (điểm cầu): a district or commune meeting room with its operator."""

    __tablename__ = "meeting_sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "unit_id": self.unit_id, "operator_id": self.operator_id}


class Participant(Base):
    """One seat: an invited account, a unit (which names who attends), or a guest without an account."""

    __tablename__ = "meeting_participants"
    __table_args__ = (UniqueConstraint("meeting_id", "user_id"), UniqueConstraint("meeting_id", "unit_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    guest_name: Mapped[str] = mapped_column(String(200), default="")
    guest_title: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str] = mapped_column(String(20), default=ParticipantRole.MEMBER)
    entitled: Mapped[bool] = mapped_column(Boolean, default=True)  # counts for the quorum
    voting: Mapped[bool] = mapped_column(Boolean, default=True)  # has a vote (issue 7)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_sites.id", ondelete="SET NULL"))
    response: Mapped[str] = mapped_column(String(20), default=Response.PENDING)
    substitute_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # a substitute carries the invitee's access to confidential items only once the chair approved
    # (or when the substitute works in the invitee's unit): ``rules.Seat.substitute_approved``
    substitute_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    response_note: Mapped[str] = mapped_column(String(500), default="")
    responded_at: Mapped[dt.datetime | None] = mapped_column()
    checked_in_at: Mapped[dt.datetime | None] = mapped_column()
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    check_in_method: Mapped[str] = mapped_column(String(20), default="")  # tablet | secretary | operator
    # the delegation (tổ đại biểu) the seat belongs to in a council: its speaking budget (meetings.speaking_budgets)
    delegation_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_delegations.id", ondelete="SET NULL"))
    checked_out_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def kind(self) -> str:
        return "user" if self.user_id else "unit" if self.unit_id else "guest"

    @property
    def attendee_id(self) -> int | None:
        return self.substitute_id or self.user_id

    @property
    def present(self) -> bool:
        return self.checked_in_at is not None and self.checked_out_at is None

    def seat(self) -> Seat:
        return Seat(id=self.id, user_id=self.user_id, unit_id=self.unit_id, substitute_id=self.substitute_id,
                    site_id=self.site_id, substitute_approved=self.substitute_approved)



# ---------------------------------------------------------------- agenda


class AgendaItem(Base):
    __tablename__ = "meeting_agenda_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    presenter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    presenter_name: Mapped[str] = mapped_column(String(200), default="")  # someone without an account
    planned_minutes: Mapped[int | None] = mapped_column(Integer)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | current | done
    started_at: Mapped[dt.datetime | None] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ItemAccess(Base):
    """Who may see a confidential item."""

    __tablename__ = "meeting_item_access"
    item_id: Mapped[int] = mapped_column(ForeignKey("meeting_agenda_items.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)



# ---------------------------------------------------------------- documents and page renders


class Document(Base):
    __tablename__ = "meeting_documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_agenda_items.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(Integer, default=0)
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DocumentVersion(Base):
    __tablename__ = "meeting_document_versions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("meeting_documents.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer)
    page_sizes: Mapped[list[list[float]]] = mapped_column(JSON, default=list)  # [w, h] points per page
    note: Mapped[str] = mapped_column(String(500), default="")
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "document_id": self.document_id, "number": self.number, "filename": self.filename,
                "size": self.size, "page_count": self.page_count, "note": self.note,
                "created_at": self.created_at.isoformat()}


class PageRender(Base):
    __tablename__ = "meeting_page_cache"
    __table_args__ = (UniqueConstraint("source_key", "page", "width", "fmt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64))
    page: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)  # a bucket of rules.PAGE_WIDTHS; 0 for word boxes
    fmt: Mapped[str] = mapped_column(String(10))  # png | jpeg | words
    blob_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)



# ---------------------------------------------------------------- speakers' queue


class Delegation(Base):
    """A delegation (tổ đại biểu) of a council's session: a group of seats sharing a total speaking time."""

    __tablename__ = "meeting_delegations"
    __table_args__ = (UniqueConstraint("meeting_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    budget: Mapped[int | None] = mapped_column(Integer)  # seconds for all its members' turns; None: no budget
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SpeakerRequest(Base):
    __tablename__ = "meeting_speakers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(Integer)  # the agenda item current when asked
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_participants.id", ondelete="SET NULL"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_sites.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20), default=SpeakerState.WAITING, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    time_limit: Mapped[int | None] = mapped_column(Integer)  # seconds
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    granted_at: Mapped[dt.datetime | None] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paused_at: Mapped[dt.datetime | None] = mapped_column()  # the chair paused the clock (meetings.speakers)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # pauses ended so far
    # the question or topic sent with a registration (often before the meeting): for the chair and secretary only,
    # never in the room's events (``public``)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # the agenda item the registration named (``item_id`` becomes the item current when the floor is given): the
    # room screen never shows a question about a confidential item
    note_item_id: Mapped[int | None] = mapped_column(Integer)

    def elapsed(self, now: dt.datetime | None = None) -> int | None:
        """Seconds spoken: from the floor given to its end (or ``now``), pauses left out."""
        if self.granted_at is None:
            return None
        until = self.ended_at or self.paused_at or now or utcnow()
        return max(0, int((until - self.granted_at).total_seconds()) - self.paused_seconds)

    @property
    def duration(self) -> int | None:
        return self.elapsed()

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "item_id": self.item_id, "user_id": self.user_id, "participant_id": self.participant_id,
                "site_id": self.site_id, "name": self.name, "state": self.state, "position": self.position,
                "time_limit": self.time_limit, "requested_at": self.requested_at.isoformat(),
                "granted_at": self.granted_at.isoformat() if self.granted_at else None,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None, "duration": self.duration,
                "paused_at": self.paused_at.isoformat() if self.paused_at else None,
                "paused_seconds": self.paused_seconds or 0}


class Recording(Base):
    """One recorded track (a site's camera or microphone) of one recording session: a WebM file in the blob store
    as the SFU forwarded it (``meetings.recordings``), placed on the session's time line by ``offset_ms``."""

    __tablename__ = "meeting_recordings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    session: Mapped[str] = mapped_column(String(40))  # one start-to-stop recording (several rooms if reopened)
    participant: Mapped[str] = mapped_column(String(40))  # media id: site:3, user:12
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(10))  # audio, video
    codec: Mapped[str] = mapped_column(String(20))
    blob_key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(60))
    started_at: Mapped[dt.datetime] = mapped_column()  # the track's first frame
    session_started_at: Mapped[dt.datetime] = mapped_column()  # the session's time line starts here
    offset_ms: Mapped[int] = mapped_column(Integer)  # started_at - session_started_at (also the file's first pts)
    duration_ms: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "session": self.session, "participant": self.participant, "name": self.name,
                "kind": self.kind, "codec": self.codec, "size": self.size, "content_type": self.content_type,
                "started_at": self.started_at.isoformat(), "session_started_at": self.session_started_at.isoformat(),
                "offset_ms": self.offset_ms, "duration_ms": self.duration_ms,
                "url": f"/api/meetings/{self.meeting_id}/recordings/{self.id}/file"}


# ---------------------------------------------------------------- minutes and conclusions


class ItemMinutes(Base):
    __tablename__ = "meeting_item_minutes"
    __table_args__ = (UniqueConstraint("item_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("meeting_agenda_items.id", ondelete="CASCADE"))
    discussion: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MinutesSignature(Base):
    """A signature (chair's or secretary's) added to the approved minutes PDF ``source_key``; the signed
    file after it is ``blob_key``. Reopening the minutes leaves these as history of the old approval."""

    __tablename__ = "meeting_minutes_signatures"
    __table_args__ = (UniqueConstraint("meeting_id", "source_key", "role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    source_key: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))  # chair | secretary
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    blob_key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    certificate: Mapped[str] = mapped_column(String(500), default="")
    signed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Conclusion(Base):
    """One conclusion of an agenda item; it can become an e-office task (assignee, deadline)."""

    __tablename__ = "meeting_conclusions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("meeting_agenda_items.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # or an agency or unit (its head sees the task): a person or a unit, never both
    assignee_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    task_id: Mapped[int | None] = mapped_column(Integer, index=True)  # eoffice task created from it
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "item_id": self.item_id, "position": self.position, "text": self.text,
                "assignee_id": self.assignee_id, "assignee_unit_id": self.assignee_unit_id,
                "deadline": self.deadline.isoformat() if self.deadline else None,
                "task_id": self.task_id}



# ---------------------------------------------------------------- annotations


class Annotation(Base):
    __tablename__ = "meeting_annotations"
    __table_args__ = (UniqueConstraint("owner_id", "client_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("meeting_documents.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("meeting_document_versions.id", ondelete="CASCADE"),
                                            index=True)
    page: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    shape: Mapped[dict[str, Any]] = mapped_column(JSON)
    color: Mapped[str] = mapped_column(String(7))
    text: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(10), default="private")
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AnnotationRecipient(Base):
    """Who an annotation with visibility ``people`` is shared with."""

    __tablename__ = "meeting_annotation_recipients"
    annotation_id: Mapped[int] = mapped_column(ForeignKey("meeting_annotations.id", ondelete="CASCADE"),
                                               primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)



# ---------------------------------------------------------------- polls, rights, ballots, ballot keys


class Poll(Base):
    __tablename__ = "meeting_polls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_agenda_items.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    method: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_choices: Mapped[int] = mapped_column(Integer, default=1)
    seats: Mapped[int] = mapped_column(Integer, default=1)
    allow_abstain: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_change: Mapped[bool] = mapped_column(Boolean, default=False)
    visibility: Mapped[str] = mapped_column(String(20), default=vr.Visibility.CLOSED)
    majority: Mapped[str] = mapped_column(String(20), default=vr.Majority.SIMPLE)
    base: Mapped[str] = mapped_column(String(20), default=vr.Base.VALID)
    tie_rule: Mapped[str] = mapped_column(String(20), default=vr.TieRule.NONE, server_default="")  # "" | chair
    quorum_rule: Mapped[str] = mapped_column(String(20), default=rules.QuorumRule.HALF)
    proxy_cap: Mapped[int] = mapped_column(Integer, default=1)
    weighted: Mapped[bool] = mapped_column(Boolean, default=False)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default=vr.State.DRAFT, index=True)
    rerun_of_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_polls.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[dt.datetime | None] = mapped_column()
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closes_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_reason: Mapped[str] = mapped_column(String(20), default="")  # chair | timer | meeting_end
    published_at: Mapped[dt.datetime | None] = mapped_column()
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()
    # counters, fixed at opening (eligibility) or kept by every cast under the poll's row lock
    votes_cast: Mapped[int] = mapped_column(Integer, default=0)
    weight_cast: Mapped[int] = mapped_column(Integer, default=0)
    eligible_count: Mapped[int] = mapped_column(Integer, default=0)
    eligible_weight: Mapped[int] = mapped_column(Integer, default=0)
    present_count: Mapped[int] = mapped_column(Integer, default=0)
    entitled_count: Mapped[int] = mapped_column(Integer, default=0)
    entitled_weight: Mapped[int] = mapped_column(Integer, default=0)
    quorum_needed: Mapped[int] = mapped_column(Integer, default=0)
    refused_proxies: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def spec(self) -> vr.Spec:
        return vr.Spec(method=vr.Method(self.method), options=tuple(range(1, len(self.options) + 1)),
                       max_choices=self.max_choices, seats=self.seats,
                       allow_abstain=self.allow_abstain or self.method == vr.Method.YES_NO_ABSTAIN,
                       majority=vr.Majority(self.majority), base=vr.Base(self.base),
                       tie_rule=vr.TieRule(self.tie_rule or ""), secret=self.secret)


class PollVoter(Base):
    """One right to vote in one poll, fixed at opening; ``voted_at`` set means "has voted"."""

    __tablename__ = "meeting_poll_voters"
    __table_args__ = (UniqueConstraint("poll_id", "participant_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("meeting_polls.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("meeting_participants.id", ondelete="CASCADE"))
    holder_id: Mapped[int] = mapped_column(ForeignKey("meeting_participants.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)  # who may cast it
    weight: Mapped[int] = mapped_column(Integer, default=1)
    proxy: Mapped[bool] = mapped_column(Boolean, default=False)
    voted_at: Mapped[dt.datetime | None] = mapped_column()
    method: Mapped[str] = mapped_column(String(20), default="")  # tablet | roll_call
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changes: Mapped[int] = mapped_column(Integer, default=0)
    ballot_id: Mapped[str | None] = mapped_column(String(32))  # named polls only; never for secret ones


class PollBallot(Base):
    """A ballot: nothing here names its voter or when it was cast (``meetings.voting``, "Secret ballots")."""

    __tablename__ = "meeting_poll_ballots"
    __table_args__ = {"sqlite_with_rowid": False}
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4().hex: random, not ordered
    poll_id: Mapped[int] = mapped_column(ForeignKey("meeting_polls.id", ondelete="CASCADE"), index=True)
    choice: Mapped[dict[str, Any]] = mapped_column(JSON)
    weight: Mapped[int] = mapped_column(Integer, default=1)


class VotingRight(Base):
    """A member's vote weight in a meeting and the proxy (ủy quyền) they gave, if any."""

    __tablename__ = "meeting_voting_rights"
    __table_args__ = (UniqueConstraint("meeting_id", "participant_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("meeting_participants.id", ondelete="CASCADE"))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    proxy_holder_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_participants.id", ondelete="SET NULL"))
    proxy_given_at: Mapped[dt.datetime | None] = mapped_column()
    proxy_recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    proxy_note: Mapped[str] = mapped_column(String(500), default="")


class PollKey(Base):
    """The ballot key of an open secret poll, wrapped; overwritten and deleted when the poll ends."""

    __tablename__ = "meeting_poll_keys"
    poll_id: Mapped[int] = mapped_column(ForeignKey("meeting_polls.id", ondelete="CASCADE"), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
