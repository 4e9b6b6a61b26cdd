"""Contract of the meeting API: meetings, participants, sites, agenda, documents, speakers,
presenter, minutes and conclusions, video controls, annotations."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from web.contract.core import Body, Date, DateTime, Flag, Id, Ids, Int, Ok, OptInt, Out, Text, require

# ---- answers ----------------------------------------------------------------------------------


class Meeting(Out):
    """A meeting."""

    id: int
    title: str
    description: str
    place: str
    starts_at: str
    ends_at: str | None
    state: str
    state_label: str
    quorum_rule: str
    chair_id: int | None
    secretary_id: int | None
    current_item_id: int | None
    minutes_state: str
    speaking_time: int | None = None


class MeetingList(Out):
    meetings: list[Meeting]


class Quorum(Out):
    present: int
    entitled: int
    needed: int
    met: bool


class Room(Out):
    """The whole room as this user may see it, with the topic's seq to resume live events from."""

    topic: str
    seq: int
    meeting: Meeting
    me: dict[str, Any]
    participants: list[dict[str, Any]]
    sites: list[dict[str, Any]]
    quorum: Quorum
    agenda: list[dict[str, Any]]
    documents: list[dict[str, Any]]


class DirectoryUser(Out):
    id: int
    full_name: str
    title: str
    unit_id: int | None


class DirectoryUnit(Out):
    id: int
    name: str
    kind: str


class Directory(Out):
    users: list[DirectoryUser]
    units: list[DirectoryUnit]


class NewRecord(Out):
    id: int


class Responded(Ok):
    response: str
    substitute_id: int | None


class SubstituteApproved(Ok):
    substitute_id: int | None
    approved: bool


class Presence(Ok):
    present: bool
    quorum: Quorum


class Site(Out):
    id: int
    name: str
    unit_id: int | None
    operator_id: int | None


class NewItem(Out):
    id: int
    position: int


class ItemOrder(Ok):
    item_ids: list[int]


class CurrentItem(Ok):
    current_item_id: int | None


class MeetingVersion(Out):
    """A version of a meeting document."""

    id: int
    document_id: int
    number: int
    filename: str
    size: int
    page_count: int | None
    note: str
    created_at: str


class NewMeetingDocument(Out):
    id: int
    version: MeetingVersion


class VersionMeta(MeetingVersion):
    title: str
    meeting_id: int
    item_id: int | None
    current_version_id: int | None
    page_sizes: list[list[float]]
    widths: list[int]


class PageWords(Out):
    page: int
    width: float
    height: float
    words: list[list[Any]]


class DocumentSearch(Out):
    query: str
    hits: list[dict[str, Any]]
    total: int


class SpeakerRequest(Out):
    id: int
    user_id: int | None
    participant_id: int | None
    site_id: int | None
    name: str
    state: str
    position: int | None
    time_limit: int | None
    requested_at: str
    granted_at: str | None = None
    paused_at: str | None = None
    paused_seconds: int = 0
    duration: int | None = None


class SpeakerRegistrations(Out):
    """Waiting requests to speak with their ``note``, ``item_title``, ``item_number`` and ``early``."""

    registrations: list[Any]


class SpeakerQuestions(Out):
    """The registered question of each waiting or speaking turn, by request id (chair and secretary)."""

    questions: dict[str, str]


class DelegationFields(Body):
    """A delegation (tổ đại biểu) and its total speaking time in seconds (null: no budget)."""

    name: Text
    budget: OptInt = None


class SeatDelegation(Body):
    delegation_id: OptInt = None


class DelegationUse(Out):
    id: int
    name: str
    budget: int | None
    used: int
    remaining: int | None
    count: int
    members: int


class Delegations(Out):
    """Delegations with the time their members spoke, and the delegation of each seat (participant id)."""

    delegations: list[DelegationUse]
    seats: dict[str, int | None]
    may_manage: bool


class ControlDesk(Out):
    """The control desk of a running meeting (issue #17): tablets online and dropped, remote sites and their
    links, open polls' cast / entitled counts (never who voted how), database and broker health."""

    meeting: dict[str, Any]
    tablets: list[dict[str, Any]]
    sites: list[dict[str, Any]]
    links: list[dict[str, Any]]
    polls: list[dict[str, Any]]
    services: dict[str, dict[str, Any]]
    at: str


class ScreenLink(Out):
    """The room screen's signed link (null: none made, or turned off)."""

    url: str | None


class SpeakerOrder(Ok):
    order: list[Any]


class Presenter(Out):
    presenter_id: int | None
    version_id: int | None
    document_id: int | None
    page: int | None


class MinutesView(Out):
    state: str
    readable: bool
    items: dict[str, Any]
    approved_at: str | None


class MinutesRevision(Ok):
    revision: int


class Conclusion(Out):
    id: int
    item_id: int
    position: int
    text: str
    assignee_id: int | None
    deadline: str | None
    task_id: int | None


class MinutesState(Ok):
    state: str


class MinutesSignature(Out):
    id: int
    role: str
    role_label: str
    user_id: int
    name: str
    certificate: str
    signed_at: str


class MeetingDossier(Out):
    id: int
    title: str
    status: str
    url: str


class LinkDossier(Body):
    """Link the meeting to one of your open work dossiers (null: unlink)."""

    dossier_id: OptInt = None


class MinutesRecord(Out):
    """The minutes as a record: number in the BB series, signatures of the current approval, signed file."""

    notation: str | None
    number: int | None
    state: str
    signatures: list[MinutesSignature]
    signed_file: str | None
    can_sign: bool
    has_certificate: bool
    dossier: MeetingDossier | None  # the work dossier the signed minutes are filed in (for its owner)


class MinutesSigned(Ok):
    role: str
    signatures: int


class VideoState(Out):
    ice_servers: list[dict[str, Any]]
    roster: list[dict[str, Any]]
    floor: str | None
    active_speaker: str | None


class FloorGiven(Ok):
    participant: str | None
    granted_request_id: int | None
    unmuted: bool


class MutedAll(Ok):
    muted: list[str]


class LinkStats(Out):
    sites: list[dict[str, Any]]


class AnnotationList(Out):
    version_id: int
    user_id: int
    annotations: list[dict[str, Any]]
    topics: dict[str, str]
    seqs: dict[str, int]


class Annotation(Out):
    """An annotation as its owner sees it."""

    id: int
    version_id: int
    page: int
    kind: str
    revision: int
    visibility: str


class AnnotationConflict(Out):
    """Changed elsewhere meanwhile: ``current`` is the annotation as it is now."""

    error: str
    message: str
    current: dict[str, Any] | None = None


class AnnotationDeleted(Ok):
    id: int
    version_id: int


class Person(Out):
    id: int
    full_name: str
    title: str


class SharePeople(Out):
    people: list[Person]


# ---- requests ---------------------------------------------------------------------------------


class MeetingFields(Body):
    """Details of a meeting; times in ISO 8601 (the agency's local time without an offset)."""

    title: Text = ""
    starts_at: DateTime = None
    ends_at: DateTime = None
    place: Text = ""
    description: Text = ""
    chair_id: OptInt = None
    secretary_id: OptInt = None
    quorum_rule: Text = ""
    speaking_time: OptInt = None  # seconds: default limit of a turn to speak (10 s to 3 h)


class MeetingCreate(MeetingFields):
    model_config = ConfigDict(json_schema_extra=require("starts_at"))


class CancelReason(Body):
    """``cancel`` takes a reason; the other steps no body."""

    reason: Text = ""


class AddParticipant(Body):
    """A person (``user_id``), a unit (``unit_id``) or a guest (``guest_name``)."""

    user_id: OptInt = None
    unit_id: OptInt = None
    guest_name: Text = ""
    guest_title: Text = ""
    role: Text = ""
    site_id: OptInt = None
    entitled: Flag = True
    voting: Flag = True


class Respond(Body):
    response: Text = ""
    substitute_id: OptInt = None
    note: Text = ""


class SubstituteApproval(Body):
    approved: bool = True


class AddSite(Body):
    name: Text = ""
    unit_id: OptInt = None
    operator_id: OptInt = None


class AgendaItemFields(Body):
    title: Text = ""
    description: Text = ""
    presenter_name: Text = ""
    presenter_id: OptInt = None
    planned_minutes: OptInt = None
    confidential: Flag = False
    allowed_user_ids: list[Int] | None = None


class ItemOrderBody(Body):
    item_ids: Ids = []


class SetCurrent(Body):
    """``item_id``, or ``step`` 1 / -1."""

    item_id: OptInt = None
    step: int | None = None


class AddMeetingDocument(Body):
    upload_id: Int
    title: Text = ""
    item_id: OptInt = None


class AddMeetingVersion(Body):
    upload_id: Int
    note: Text = ""


class RequestFloor(Body):
    site_id: OptInt = None
    participant_id: OptInt = None
    item_id: OptInt = None  # the agenda item the registration is about
    note: Text = ""  # the question or topic (up to 2,000 characters), read by the chair and secretary only


class SpeakerAction(Body):
    """``grant`` and ``limit`` take ``time_limit`` (seconds), ``extend`` takes ``seconds``; the others no body."""

    time_limit: OptInt = None
    seconds: OptInt = None


class SpeakerOrderBody(Body):
    request_ids: Ids = []


class ChairMessage(Body):
    text: Text


class ChairMessageSent(Out):
    text: str
    sender: str
    at: str


class PresenterMove(Body):
    version_id: Int
    page: Int
    zoom: float = 1
    x: float = 0
    y: float = 0


class SaveMinutes(Body):
    text: Text = ""
    revision: Int = 0


class ConclusionFields(Body):
    """A conclusion is assigned to a person in the meeting (assignee_id) or to an agency or unit
    (assignee_unit_id), not both: setting one clears the other."""

    text: Text = ""
    assignee_id: OptInt = None
    assignee_unit_id: OptInt = None
    deadline: Date = None


class ConclusionTask(Body):
    assignee_id: OptInt = None
    assignee_unit_id: OptInt = None
    deadline: Date = None


class MinutesReopen(Body):
    """``reopen`` takes a reason; ``approve`` no body."""

    reason: Text = ""


class MinutesSign(Body):
    """The passphrase (PIN) of the signer's own certificate, typed for each signature."""

    model_config = ConfigDict(json_schema_extra=require("passphrase"))
    passphrase: Text = ""


class Mute(Body):
    model_config = ConfigDict(json_schema_extra=require("participant", "kind"))
    participant: str | None = None
    kind: Text = ""
    muted: Flag = True


class Floor(Body):
    participant: str | None = None


class AnnotationCreate(Body):
    model_config = ConfigDict(json_schema_extra=require("page", "kind"))
    client_id: str | int | None = None
    page: int | None = None
    kind: str | None = None
    shape: dict[str, Any] | None = None
    color: str | None = None
    text: str | None = ""
    visibility: str | None = "private"
    recipient_ids: list[Id] | None = None


class AnnotationChange(Body):
    model_config = ConfigDict(json_schema_extra=require("revision"))
    revision: int | str | None = None
    page: int | None = None
    shape: dict[str, Any] | None = None
    color: str | None = None
    text: str | None = None
    visibility: str | None = None
    recipient_ids: list[Id] | None = None


class RecordingPolicy(Body):
    model_config = ConfigDict(json_schema_extra=require("who"))
    who: Text = ""


class RecordingStatus(Out):
    recording: bool
    session: str | None
    started_at: str | None
    policy: str


class RecordingList(Out):
    recordings: list[dict[str, Any]]
