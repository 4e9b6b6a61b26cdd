"""Contract of the e-office API: incoming documents, direction and tasks, outgoing drafts,
dossiers, search, statistics, edXML exchange and signatures."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from web.contract.core import Body, Date, DateTime, Flag, Ids, Int, OptInt, Out, Text, require

# ---- answers ----------------------------------------------------------------------------------


class CodeName(Out):
    code: str
    name: str


class Reference(Out):
    """Document types, urgency and confidentiality levels, retention periods."""

    doc_types: list[CodeName]
    urgency: list[CodeName]
    confidentiality: list[CodeName]
    retention: list[CodeName]


class Document(Out):
    """An incoming or outgoing document."""

    id: int
    direction: str
    agency_id: int
    number: int | None
    year: int | None
    status: str
    status_label: str
    doc_type: str
    notation: str
    sender: str
    date_issued: str | None
    received_at: str | None
    summary: str
    urgency: str
    confidentiality: str
    due_date: str | None
    recipients: list[Any]


class DocumentList(Out):
    total: int
    total_more: bool
    items: list[Document]


class Attachment(Out):
    id: int
    filename: str
    content_type: str
    size: int
    is_pdf: bool
    page_count: int | None
    has_rendition: bool = False  # a PDF made of an office file or a scan (eoffice.renditions) shows its pages


class Task(Out):
    """A task (việc) made by a direction or passed down."""

    id: int
    document_id: int | None
    parent_id: int | None
    role: str
    assignee_user_id: int | None
    assignee_unit_id: int | None
    title: str
    deadline: str | None
    status: str
    progress: int | None
    deadline_state: str


class CorrectionEntry(Out):
    """One corrected field: its old and new value."""

    id: int
    field: str
    field_label: str
    old_value: str
    new_value: str
    reason: str
    user_id: int | None
    created_at: str | None


class DocumentView(Out):
    """A document with what surrounds it (the ``document:`` snapshot)."""

    document: Document
    attachments: list[Attachment]
    corrections: list[CorrectionEntry] = []
    ingest_jobs: list[dict[str, Any]] = []
    submissions: list[dict[str, Any]] = []
    directions: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []


class Registered(Out):
    document: Document
    ingest_jobs: list[int]


class Corrected(Out):
    document: Document
    corrections: list[CorrectionEntry]


class Voided(Out):
    document: Document
    tasks_withdrawn: list[int]


class IngestJobs(Out):
    ingest_jobs: list[int]


class IdStatus(Out):
    id: int
    status: str


class Created(Out):
    id: int


class Directed(Out):
    direction_id: int
    tasks: list[Task]


class Inbox(Out):
    submitted: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    informed: list[dict[str, Any]]


class TaskList(Out):
    items: list[Task]
    overdue: int
    due_soon: int


class TaskUpdate(Out):
    id: int
    task_id: int
    user_id: int
    kind: str
    text: str
    progress: int | None
    file_url: str | None
    created_at: str


class TaskView(Out):
    task: Task
    updates: list[TaskUpdate]


class Tasks(Out):
    tasks: list[Task]


class TaskUpdates(Out):
    updates: list[TaskUpdate]


class DocumentItems(Out):
    items: list[Document]


class DraftVersion(Out):
    id: int
    version: int
    summary: str
    filename: str | None
    note: str
    created_at: str
    file_url: str | None


class ApprovalStep(Out):
    id: int
    version: int
    approver_id: int
    status: str
    comment: str
    created_at: str
    decided_at: str | None


class DraftHistory(Out):
    versions: list[dict[str, Any]]
    steps: list[dict[str, Any]]


class Delivered(Out):
    agency_id: int
    number: int | None


class Issued(Out):
    document: Document
    delivered: list[Delivered]


class Dossier(Out):
    id: int
    title: str
    year: int
    status: str
    file_code: str | None
    retention: str | None
    opened_at: str
    closed_at: str | None


class DossierList(Out):
    items: list[Dossier]


class DossierFile(Out):
    id: int
    name: str
    size: int | None
    added_at: str
    url: str


class DossierContents(Out):
    dossier: Dossier
    documents: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    files: list[DossierFile]


class SearchHit(Document):
    rank: float


class SearchResults(Out):
    items: list[SearchHit]


class StatsTotal(Out):
    received: int
    on_time: int
    late: int
    in_progress: int
    overdue: int
    on_time_rate: float | None


class Statistics(Out):
    level: str
    as_of: str
    rows: list[dict[str, Any]]
    total: StatsTotal


class EdxmlResult(Out):
    """What an imported package did (``action``: registered, replaced, recalled, status ...)."""

    action: str


class Items(Out):
    items: list[dict[str, Any]]


class EdxmlTimeline(Out):
    exchange: dict[str, Any] | None
    status_events: list[dict[str, Any]]
    signature: dict[str, Any] | None


class EdxmlStatus(Out):
    """The status package (Decree 30 edXML) of a received document."""


class DocumentSignatures(Out):
    attachments: list[dict[str, Any]]


class Signed(Out):
    signed_attachments: list[int]


# ---- requests ---------------------------------------------------------------------------------


class Assignee(Body):
    """A person (``user_id``) or a unit (``unit_id``)."""

    user_id: OptInt = None
    unit_id: OptInt = None


class RegisterIncoming(Body):
    model_config = ConfigDict(json_schema_extra=require("sender", "summary", "date_issued"))
    sender: Text = ""
    notation: Text = ""
    date_issued: Date = None
    doc_type: Text = "cong_van"
    summary: Text = ""
    signer: Text = ""
    urgency: Text = "thuong"
    confidentiality: Text = "thuong"
    page_count: OptInt = None
    due_date: Date = None
    received_at: DateTime = None
    upload_ids: Ids = []
    paper_only: Flag = False  # no file: the document exists on paper only (else upload_ids is required)
    confirm_duplicate: Flag = False


class CorrectDocument(Body):
    """Đính chính: only the fields sent are corrected; ``reason`` is kept with them. Confidentiality
    cannot be corrected (400): void the registration and register again."""

    sender: Text = ""
    notation: Text = ""
    date_issued: Date = None
    doc_type: Text = ""
    summary: Text = ""
    signer: Text = ""
    urgency: Text = ""
    reason: Text = ""


class VoidDocument(Body):
    """Hủy vào sổ: why the registration was a mistake."""

    model_config = ConfigDict(json_schema_extra=require("reason"))
    reason: Text = ""


class UploadIds(Body):
    upload_ids: Ids = []


class Submit(Body):
    to_user_id: Int
    note: Text = ""


class Direct(Body):
    model_config = ConfigDict(json_schema_extra=require("main"))
    text: Text = ""
    main: Assignee | None = None
    collaborators: list[Assignee] | None = None
    informed: list[Assignee] | None = None
    deadline: Date = None
    ink: list[dict[str, Any]] | None = None  # bút phê: eoffice.ink


class PassDown(Body):
    main_user_id: Int
    collaborator_ids: Ids = []
    instruction: Text = ""
    deadline: Date = None


class PostUpdate(Body):
    text: Text = ""
    progress: OptInt = None
    upload_ids: Ids = []


class Reason(Body):
    reason: Text = ""


class Reassign(Body):
    model_config = ConfigDict(json_schema_extra=require("assignee"))
    assignee: Assignee | None = None
    reason: Text = ""


class ExtensionRequest(Body):
    model_config = ConfigDict(json_schema_extra=require("new_deadline"))
    new_deadline: Date = None
    reason: Text = ""


class ExtensionDecision(Body):
    approve: Flag = False
    note: Text = ""


class Complete(Body):
    result: Text = ""
    upload_ids: Ids = []
    result_document_id: OptInt = None


class Recipient(Body):
    """An internal unit (``unit_id``) or another agency by name."""

    unit_id: OptInt = None
    name: Text = ""


class CreateDraft(Body):
    doc_type: Text = "cong_van"
    summary: Text = ""
    recipients: list[Recipient | str] | None = None
    confidentiality: Text = "thuong"
    urgency: Text = "thuong"
    due_date: Date = None
    upload_id: OptInt = None
    note: Text = ""


class AddDraftVersion(Body):
    summary: str | None = None
    upload_id: OptInt = None
    note: Text = ""


class SendDraft(Body):
    approver_id: OptInt = None
    comment: Text = ""


class ApproveDraft(Body):
    comment: Text = ""
    forward_to: OptInt = None


class Comment(Body):
    comment: Text = ""


class IssueDraft(Body):
    signer: Text = ""
    date_issued: Date = None


class OpenDossier(Body):
    title: Text = ""
    year: OptInt = None


class FileIntoDossier(Body):
    """A document (``document_id``) or a task (``task_id``)."""

    document_id: OptInt = None
    task_id: OptInt = None


class CloseDossier(Body):
    file_code: Text = ""
    retention: Text = ""


class ExchangeReceived(Out):
    """What became of a signed request from a peer (``result``: imported, refused, duplicate)."""

    result: str
    idem_key: str
    document_id: int | None


class ExchangeSent(Out):
    """A package queued for a peer, with its delivery attempts."""

    id: int
    kind: str
    attempts: int
    sent_at: str | None


class ExchangeSend(Body):
    """The peer (its organisation id) to send the document to."""

    model_config = ConfigDict(json_schema_extra=require("organ_id"))
    organ_id: Text = ""
