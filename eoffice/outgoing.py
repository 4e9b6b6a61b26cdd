"""Outgoing documents (văn bản đi): draft with versions, approval chain with comments, issue.

specialist drafts -> sends to the unit head -> who approves and forwards to the agency leader ->
who approves (final) -> the agency's clerk issues it: the number is allocated in the series of
its type and year (``15/QĐ-UBND``, ``15/UBND-VX`` for a công văn), and every internal recipient
agency receives it as an incoming document in its own register without retyping.

The server keeps the chain in order (``chain_of``, ``progress``): its levels are the drafting unit
and each unit above it up to the agency, each approved by one of that unit's leaders (the drafter
or the previous approver picks which). Nobody skips a level or sends a draft back down, only the
approver whose turn it is decides (403 otherwise), and only the agency's level approves for good
(409 below it). A draft returned to its author starts again at the first level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from eoffice import (
    access,
    audit,
    delegation,
    doctypes,
    edxml,
    exchange_outbox,
    ingest,
    org_admin,
    registers,
    search,
    signatures,
    uploads,
)
from eoffice.documents import _attach, get_document
from eoffice.org import Role, Unit, User
from eoffice.schema.documents import Document, Reason, Status
from eoffice.schema.outgoing import ApprovalStep, DocumentVersion
from eoffice.textfold import format_notation, notation_key, sender_key
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

if TYPE_CHECKING:
    from storage.blobs import BlobStore


# ---- pure rules -------------------------------------------------------------------------------

def parse_recipients(values: Sequence[Any]) -> list[dict[str, Any]]:
    """``[{"unit_id": 3}, {"name": "Bộ Nội vụ"}]``: internal units by id, others by name."""
    out: list[dict[str, Any]] = []
    for v in values:
        if isinstance(v, dict) and v.get("unit_id") is not None:
            try:
                out.append({"unit_id": int(v["unit_id"])})
            except (TypeError, ValueError):
                raise Invalid("Nơi nhận không hợp lệ.", field="recipients") from None
        elif isinstance(v, dict) and str(v.get("name", "")).strip():
            item: dict[str, Any] = {"name": str(v["name"]).strip()[:300]}
            if str(v.get("organ_id") or "").strip():  # another installation's agency (#16: eoffice.exchange_outbox)
                item["organ_id"] = str(v["organ_id"]).strip()[:100]
            out.append(item)
        elif isinstance(v, str) and v.strip():
            out.append({"name": v.strip()[:300]})
        else:
            raise Invalid("Nơi nhận không hợp lệ.", field="recipients")
    return out


# ---- the approval chain -----------------------------------------------------------------------

@dataclass(frozen=True)
class Level:
    """One step of a draft's approval chain: the leadership of one unit (the drafting unit's head
    and deputies, then each unit above it, up to the agency's leaders, who approve last)."""

    unit_id: int
    unit_name: str
    final: bool

    @property
    def label(self) -> str:
        return f"Lãnh đạo {self.unit_name}"


@dataclass
class Progress:
    """Where a draft stands in its chain: the levels, the steps of the current round (since the
    last return), the level of the pending step and whose turn it is."""

    chain: list[Level]
    round: list[ApprovalStep]
    pending: ApprovalStep | None
    pending_level: int | None  # index in ``chain`` of the pending step (-1: its approver left the chain)
    next_level: Level | None  # where the draft goes next: on send (draft), on approval (in review)
    candidates: list[User]  # who may be chosen for ``next_level``
    units: dict[int, int | None] = field(default_factory=dict)  # approver id -> their unit

    def level_index(self, step: ApprovalStep) -> int:
        unit = self.units.get(step.approver_id)
        return next((i for i, lv in enumerate(self.chain) if lv.unit_id == unit), -1)

    def public(self, doc: Document) -> dict[str, Any]:
        approved = {self.level_index(s) for s in self.round if s.status == "approved"}
        levels = []
        for i, lv in enumerate(self.chain):
            state = ("approved" if i in approved or doc.status in (Status.APPROVED, Status.ISSUED)
                     else "pending" if i == self.pending_level else "waiting")
            levels.append({"unit_id": lv.unit_id, "unit_name": lv.unit_name, "label": lv.label, "final": lv.final,
                           "state": state})
        if doc.status == Status.DRAFT:
            turn = {"who": "author", "user_id": doc.created_by}
        elif doc.status == Status.IN_REVIEW and self.pending is not None:
            turn = {"who": "approver", "user_id": self.pending.approver_id,
                    "level": self.pending_level}
        elif doc.status == Status.APPROVED:
            turn = {"who": "clerk", "unit_id": doc.agency_id}
        else:
            turn = {"who": None}
        return {"levels": levels, "turn": turn,
                "next": ({"unit_id": self.next_level.unit_id, "label": self.next_level.label,
                          "final": self.next_level.final} if self.next_level else None),
                "candidates": [u.id for u in self.candidates]}


def _leaders_of(people: Sequence[User], unit_id: int) -> list[User]:
    return [p for p in people if p.unit_id == unit_id and p.active and p.has_role(Role.LEADER)]


async def chain_of(uow: UnitOfWork, doc: Document) -> list[Level]:
    """The levels a draft must pass, in order: the drafting unit, each unit above it, the agency.

    Levels at or below its author are skipped (a unit head's draft starts with the level above
    their unit; the agency leader's own draft has no level left: sending it is approving it). A
    unit below the agency without any active leader is skipped too (a vacant head would otherwise
    block every draft of the unit); the agency's level is never skipped, so no draft is approved
    without the agency's leaders."""
    session = uow.session
    path: list[Unit] = []
    unit = await session.get(Unit, doc.unit_id) if doc.unit_id is not None else None
    while unit is not None and len(path) < 32:
        path.append(unit)
        if unit.id == doc.agency_id:
            break
        unit = await session.get(Unit, unit.parent_id) if unit.parent_id is not None else None
    if not path or path[-1].id != doc.agency_id:  # drafted outside the agency's tree: its leaders only
        agency = await session.get(Unit, doc.agency_id)
        path = [agency] if agency is not None else []
    author = await session.get(User, doc.created_by) if doc.created_by is not None else None
    if author is not None and author.has_role(Role.LEADER):
        at = next((i for i, u in enumerate(path) if u.id == author.unit_id), None)
        if at is not None:
            path = path[at + 1:]
    people: list[User] = []
    if path:
        people = list((await session.scalars(select(User).where(
            User.unit_id.in_([u.id for u in path]), User.active.is_(True)))).all())
    return [Level(u.id, u.name, u.id == doc.agency_id) for u in path
            if u.id == doc.agency_id or _leaders_of(people, u.id)]


async def progress(uow: UnitOfWork, doc: Document) -> Progress:
    chain = await chain_of(uow, doc)
    steps = (await uow.session.scalars(select(ApprovalStep).where(ApprovalStep.document_id == doc.id)
                                       .order_by(ApprovalStep.id))).all()
    last_return = max((i for i, s in enumerate(steps) if s.status == "returned"), default=-1)
    rnd = list(steps[last_return + 1:])
    approver_ids = {s.approver_id for s in rnd}
    units = ({u.id: u.unit_id for u in (await uow.session.scalars(select(User).where(User.id.in_(approver_ids))))}
             if approver_ids else {})
    pending = next((s for s in rnd if s.status == "pending"), None)
    p = Progress(chain, rnd, pending, None, None, [], units)
    nxt: int | None = None
    if doc.status == Status.DRAFT:
        nxt = 0
    elif doc.status == Status.IN_REVIEW and pending is not None:
        p.pending_level = p.level_index(pending)
        nxt = p.pending_level + 1
    if nxt is not None and nxt < len(chain):
        p.next_level = chain[nxt]
        people = (await uow.session.scalars(select(User).where(
            User.unit_id == p.next_level.unit_id, User.active.is_(True)).order_by(User.rank, User.full_name))).all()
        p.candidates = _leaders_of(people, p.next_level.unit_id)
    return p


def _check_next(p: Progress, actor: User, approver: User | None) -> None:
    """The one rule of the chain's order: the draft goes to a leader of the next level, no other."""
    if approver is None or not approver.active or not approver.has_role(Role.LEADER):
        raise Invalid("Người duyệt phải là lãnh đạo.", field="approver_id")
    if approver.id == actor.id:
        raise Invalid("Không thể tự trình cho chính mình.", field="approver_id")
    if p.next_level is None:
        raise Conflict("Dự thảo đã qua đủ các cấp duyệt: đây là bước duyệt cuối cùng, không trình tiếp.")
    if approver.unit_id != p.next_level.unit_id:
        raise Conflict(f"Dự thảo phải được trình {p.next_level.label} theo đúng thứ tự, "
                       "không vượt cấp hoặc trình ngược.", field="approver_id")


# ---- helpers ----------------------------------------------------------------------------------

async def _latest(uow: UnitOfWork, doc_id: int) -> DocumentVersion | None:
    return await uow.session.scalar(select(DocumentVersion).where(DocumentVersion.document_id == doc_id)
                                    .order_by(DocumentVersion.version.desc()).limit(1))


async def _pending_step(uow: UnitOfWork, doc_id: int) -> ApprovalStep | None:
    return await uow.session.scalar(select(ApprovalStep).where(
        ApprovalStep.document_id == doc_id, ApprovalStep.status == "pending").limit(1))


async def _version_file(uow: UnitOfWork, actor: User, blobs: ingest.BlobReader, upload_id: int | None
                        ) -> dict[str, Any]:
    if upload_id is None:
        return {}
    up = await uploads.claim(uow, actor, upload_id)
    pages = None
    if ingest.looks_like_pdf(up.filename, up.content_type):
        data = await blobs.read(up.blob_key, limit=ingest.MAX_PDF_BYTES)
        pages = (await ingest.inspect(data, up.filename)).page_count
    return {"blob_key": up.blob_key, "filename": up.filename, "content_type": up.content_type, "size": up.size,
            "page_count": pages}


async def _draft(uow: UnitOfWork, actor: User, document_id: int) -> Document:
    doc = await get_document(uow, actor, document_id)
    if doc.direction != registers.Direction.OUT:
        raise NotFound("Không tìm thấy dự thảo.")
    return doc


# ---- services ---------------------------------------------------------------------------------

async def create_draft(
    uow: UnitOfWork, actor: User, blobs: ingest.BlobReader, *, doc_type: str, summary: str,
    recipients: Sequence[Any] = (), confidentiality: str = "thuong", urgency: str = "thuong",
    due_date: dt.date | None = None, upload_id: int | None = None, note: str = "",
) -> Document:
    doctypes.doc_type(doc_type)
    level, urg = doctypes.confidentiality(confidentiality), doctypes.urgency(urgency)
    if not summary.strip():
        raise Invalid("Cần nhập trích yếu nội dung.", field="summary")
    agency = await registers.agency_of(uow, actor.unit_id)
    rec = parse_recipients(recipients)
    for r in rec:
        if "unit_id" in r:
            unit = await uow.session.get(Unit, r["unit_id"])
            if unit is None:
                raise NotFound("Không tìm thấy đơn vị nhận.", unit_id=r["unit_id"])
            org_admin.require_open(unit, "nhận văn bản mới")
    file = await _version_file(uow, actor, blobs, upload_id)
    doc = Document(direction=registers.Direction.OUT, agency_id=agency.id, status=Status.DRAFT, doc_type=doc_type,
                   summary=summary.strip(), urgency=urg, confidentiality=level, due_date=due_date,
                   unit_id=actor.unit_id, recipients=rec, created_by=actor.id, sender=agency.name,
                   sender_key=sender_key(agency.name), page_count=file.get("page_count") or 0)
    uow.session.add(doc)
    await uow.session.flush()
    search.new_document(uow, doc.id)
    uow.session.add(DocumentVersion(document_id=doc.id, version=1, summary=doc.summary, note=note.strip(),
                                    created_by=actor.id, **file))
    await access.grant(uow, doc.id, Reason.DRAFTED, user_id=actor.id)
    await search.index_document(uow, doc)
    await audit.record(uow, actor, "draft.create", "document", doc.id, doc_type=doc_type, version=1)
    uow.emit(f"document:{doc.id}", "draft.created", id=doc.id)
    return doc


async def add_version(uow: UnitOfWork, actor: User, blobs: ingest.BlobReader, document_id: int, *,
                      summary: str | None = None, upload_id: int | None = None, note: str = "") -> DocumentVersion:
    """A new version by the drafter (draft or returned) or by the approver whose turn it is."""
    doc = await _draft(uow, actor, document_id)
    step = await _pending_step(uow, doc.id)
    if doc.status == Status.DRAFT:
        if doc.created_by != actor.id:
            raise Forbidden("Chỉ người soạn thảo được sửa dự thảo.")
    elif doc.status != Status.IN_REVIEW or step is None or step.approver_id != actor.id:
        raise Conflict("Dự thảo không ở trạng thái được sửa.")
    latest = await _latest(uow, doc.id)
    file = await _version_file(uow, actor, blobs, upload_id)
    if not file and latest is not None and latest.blob_key:
        file = {k: getattr(latest, k) for k in ("blob_key", "filename", "content_type", "size", "page_count")}
    n = (latest.version if latest else 0) + 1
    v = DocumentVersion(document_id=doc.id, version=n, summary=(summary or doc.summary).strip(), note=note.strip(),
                        created_by=actor.id, **file)
    uow.session.add(v)
    doc.summary, doc.updated_at = v.summary, utcnow()
    doc.page_count = file.get("page_count") or doc.page_count
    await uow.session.flush()
    await search.index_document(uow, doc)
    await audit.record(uow, actor, "draft.version", "document", doc.id, version=n)
    uow.emit(f"document:{doc.id}", "draft.version", version=n)
    return v


async def _locked_draft(uow: UnitOfWork, actor: User, document_id: int) -> Document:
    """The draft, its row locked for the rest of the transaction on PostgreSQL, so two decisions
    on one draft (a double click, two deputies at once) queue and the second sees the first's
    outcome. SQLite needs nothing: its writers are serialised (BEGIN IMMEDIATE)."""
    doc = await _draft(uow, actor, document_id)
    await uow.session.execute(select(Document).where(Document.id == doc.id).with_for_update()
                              .execution_options(populate_existing=True))
    return doc


async def send_for_approval(uow: UnitOfWork, actor: User, document_id: int, approver_id: int | None,
                            comment: str = "") -> ApprovalStep:
    """The drafter sends the draft (or sends it again after a return) to a leader of the first level
    of its chain. A draft of the agency's leader has no level left: sending it approves it."""
    doc = await _locked_draft(uow, actor, document_id)
    if doc.created_by != actor.id:
        raise Forbidden("Chỉ người soạn thảo được trình dự thảo.")
    if doc.status != Status.DRAFT:
        raise Conflict("Dự thảo đang được duyệt hoặc đã duyệt.")
    p = await progress(uow, doc)
    if not p.chain:
        if approver_id not in (None, actor.id):
            raise Conflict("Dự thảo của lãnh đạo cơ quan không cần trình ai: trình là duyệt.",
                           field="approver_id")
        latest = await _latest(uow, doc.id)
        step = ApprovalStep(document_id=doc.id, version=latest.version if latest else 1, approver_id=actor.id,
                            requested_by=actor.id, status="approved", request_comment=comment.strip(),
                            comment=comment.strip(), decided_at=utcnow())
        uow.session.add(step)
        await uow.session.flush()
        await audit.record(uow, actor, "draft.send", "document", doc.id, step_id=step.id, to=actor.username,
                           level=None, step=0, of=0)
        await _finalise(uow, actor, doc, step, level=None)
        return step
    if approver_id is None:
        raise Invalid("Cần chọn người duyệt.", field="approver_id")
    approver = await uow.session.get(User, approver_id)
    _check_next(p, actor, approver)
    assert approver is not None and p.next_level is not None
    return await _new_step(uow, actor, doc, approver, comment, p, 0)


async def _new_step(uow: UnitOfWork, actor: User, doc: Document, approver: User, comment: str, p: Progress,
                    index: int) -> ApprovalStep:
    latest = await _latest(uow, doc.id)
    step = ApprovalStep(document_id=doc.id, version=latest.version if latest else 1, approver_id=approver.id,
                        requested_by=actor.id, request_comment=comment.strip())
    uow.session.add(step)
    doc.status, doc.updated_at = Status.IN_REVIEW, utcnow()
    await uow.session.flush()
    await access.grant(uow, doc.id, Reason.APPROVER, user_id=approver.id)
    search.keys_changed(uow, [doc.id])  # a grant and the status
    await audit.record(uow, actor, "draft.send", "document", doc.id, step_id=step.id, to=approver.username,
                       level=p.chain[index].unit_id, step=index + 1, of=len(p.chain))
    uow.emit(f"user:{approver.id}", "draft.to_approve", document_id=doc.id, step_id=step.id)
    uow.emit(f"document:{doc.id}", "draft.sent", step_id=step.id)
    return step


async def _my_step(uow: UnitOfWork, actor: User, doc: Document) -> tuple[ApprovalStep, dict[str, str]]:
    """The pending step if it is the actor's turn, themselves or for its approver by a delegation of
    ``approve`` (``delegation.acting_for``; the step then records ``decided_by``), with what the audit
    entry adds for such an action."""
    step = await _pending_step(uow, doc.id)
    if doc.status != Status.IN_REVIEW or step is None:
        raise Conflict("Dự thảo không chờ duyệt.")
    on_behalf = await delegation.acting_for(uow, actor, [step.approver_id], delegation.APPROVE,
                                            "Chưa đến lượt bạn: dự thảo đang chờ người khác duyệt.")
    step.decided_by = actor.id if on_behalf is not None else None
    return step, await delegation.audit_fields(uow, actor, on_behalf)


async def _finalise(uow: UnitOfWork, actor: User, doc: Document, step: ApprovalStep, *, level: int | None,
                    behalf: dict[str, str] | None = None) -> None:
    doc.status, doc.updated_at = Status.APPROVED, utcnow()
    await access.grant(uow, doc.id, Reason.TO_ISSUE, unit_id=doc.agency_id)
    search.keys_changed(uow, [doc.id])  # approved: the clerk's rule reaches it
    await audit.record(uow, actor, "draft.approve", "document", doc.id, step_id=step.id, final=True, level=level,
                       **(behalf or {}))
    uow.emit(f"user:{doc.created_by}", "draft.approved", document_id=doc.id)
    uow.emit(f"unit:{doc.agency_id}", "draft.to_issue", document_id=doc.id)
    uow.emit(f"document:{doc.id}", "draft.approved")


async def approve(uow: UnitOfWork, actor: User, document_id: int, *, comment: str = "",
                  forward_to: int | None = None) -> ApprovalStep:
    """Approve the step whose turn it is. Below the last level ``forward_to`` (a leader of the next
    level) is required and the draft goes up the chain; at the last level (the agency's leaders)
    the approval is final and the draft waits for the clerk to issue it."""
    doc = await _locked_draft(uow, actor, document_id)
    step, behalf = await _my_step(uow, actor, doc)
    p = await progress(uow, doc)
    level = p.chain[p.pending_level].unit_id if p.pending_level is not None and p.pending_level >= 0 else None
    if forward_to is None and p.next_level is not None:
        raise Conflict(f"Chưa thể duyệt cuối cùng: dự thảo còn phải trình {p.next_level.label}. "
                       "Hãy chọn người để trình tiếp.", field="forward_to")
    approver = None
    if forward_to is not None:
        approver = await uow.session.get(User, forward_to)
        _check_next(p, actor, approver)
    step.status, step.comment, step.decided_at = "approved", comment.strip(), utcnow()
    await uow.session.flush()
    if approver is not None:
        await audit.record(uow, actor, "draft.approve", "document", doc.id, step_id=step.id, final=False,
                           level=level, **behalf)
        return await _new_step(uow, actor, doc, approver, comment, p, (p.pending_level or 0) + 1)
    await _finalise(uow, actor, doc, step, level=level, behalf=behalf)
    return step


async def return_draft(uow: UnitOfWork, actor: User, document_id: int, comment: str) -> ApprovalStep:
    """The approver whose turn it is returns the draft to its author, with a reason; the author
    sends it again from the first level."""
    doc = await _locked_draft(uow, actor, document_id)
    step, behalf = await _my_step(uow, actor, doc)
    if not comment.strip():
        raise Invalid("Cần nêu ý kiến khi trả lại dự thảo.", field="comment")
    p = await progress(uow, doc)
    step.status, step.comment, step.decided_at = "returned", comment.strip(), utcnow()
    doc.status, doc.updated_at = Status.DRAFT, utcnow()
    search.keys_changed(uow, [doc.id])
    level = p.chain[p.pending_level].unit_id if p.pending_level is not None and p.pending_level >= 0 else None
    await audit.record(uow, actor, "draft.return", "document", doc.id, step_id=step.id, level=level, **behalf)
    uow.emit(f"user:{doc.created_by}", "draft.returned", document_id=doc.id)
    uow.emit(f"document:{doc.id}", "draft.returned")
    return step


async def history(uow: UnitOfWork, actor: User, document_id: int) -> dict[str, Any]:
    doc = await _draft(uow, actor, document_id)
    versions = (await uow.session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == doc.id)
                                          .order_by(DocumentVersion.version))).all()
    steps = (await uow.session.scalars(select(ApprovalStep).where(ApprovalStep.document_id == doc.id)
                                       .order_by(ApprovalStep.id))).all()
    return {"versions": [v.public() for v in versions], "steps": [s.public() for s in steps],
            "chain": (await progress(uow, doc)).public(doc)}


async def version_file(uow: UnitOfWork, actor: User, version_id: int) -> DocumentVersion:
    """The file of a draft's version, for whoever may see the draft (NotFound otherwise: the
    version's existence is not confirmed either)."""
    version = await uow.session.get(DocumentVersion, version_id)
    if version is None or version.blob_key is None:
        raise NotFound("Không tìm thấy tệp.")
    await _draft(uow, actor, version.document_id)
    return version


async def issue(uow: UnitOfWork, actor: User, document_id: int, *, signer: str,
                date_issued: dt.date | None = None,
                blobs: BlobStore | None = None) -> tuple[Document, list[Document], list[int]]:
    """Number and issue an approved draft; deliver it to internal recipient agencies. Returns the
    issued document, the incoming copies and the ingest jobs to start after commit.

    With ``blobs`` (the server always passes it) the PDF is signed with the agency's certificate
    when one is configured (eoffice.signatures), in the same transaction, so recipients receive
    the signed file."""
    if not actor.has_role(Role.CLERK):
        raise Forbidden("Chỉ văn thư được cấp số và phát hành văn bản.")
    doc = await _draft(uow, actor, document_id)
    agency = await registers.agency_of(uow, actor.unit_id)
    if doc.agency_id != agency.id:
        raise Forbidden("Văn bản không thuộc cơ quan của bạn.")
    if doc.status != Status.APPROVED:
        raise Conflict("Chỉ phát hành văn bản đã được duyệt.")
    if not signer.strip():
        raise Invalid("Cần nhập người ký.", field="signer")
    now = utcnow()
    today = registers.local_date(now)
    date_issued = date_issued or today
    if date_issued > today or date_issued.year != today.year:
        # the date decides the year of the number (numbers restart on 1 January): a date in another
        # year would take a number in a series already closed, or not yet open
        raise Invalid(f"Ngày ban hành phải trong năm {today.year} và không sau hôm nay ({today:%d/%m/%Y}).",
                      field="date_issued")
    t = doctypes.doc_type(doc.doc_type)
    unit = await uow.session.get(Unit, doc.unit_id) if doc.unit_id else None
    recipient_agencies: list[Unit] = []
    for r in doc.recipients or []:
        if "unit_id" in r:
            target = await registers.agency_of(uow, r["unit_id"])
            if target.id != agency.id and target not in recipient_agencies:
                recipient_agencies.append(target)
    recipient_agencies.sort(key=lambda u: u.id)

    # all numbers first (fixed lock order: this register, then the recipients' by agency id)
    series = registers.series_for(registers.Direction.OUT, doc.doc_type, doc.confidential)
    reg_id, number = await registers.allocate_number(uow, agency.id, registers.Direction.OUT, series,
                                                     date_issued.year)
    arrivals = []
    in_series = registers.series_for(registers.Direction.IN, doc.doc_type, doc.confidential)
    for target in recipient_agencies:
        arrivals.append(await registers.allocate_number(uow, target.id, registers.Direction.IN, in_series,
                                                        registers.register_year(now)))

    doc.register_id, doc.number, doc.year = reg_id, number, date_issued.year
    doc.notation = format_notation(number, t.abbr, agency.code, unit.code if unit and not t.abbr else "")
    doc.notation_key, doc.date_issued, doc.signer = notation_key(doc.notation), date_issued, signer.strip()
    doc.status, doc.updated_at = Status.ISSUED, now
    search.keys_changed(uow, [doc.id])  # its number and date issued
    latest = await _latest(uow, doc.id)
    files = []
    if latest is not None and latest.blob_key:
        files = [(latest.blob_key, latest.filename or "van-ban", latest.content_type or "application/octet-stream",
                  latest.size or 0, latest.page_count)]
    job_ids = await _attach(uow, doc, files, actor.id)
    await search.index_document(uow, doc)

    copies = []
    for target, (in_reg, in_number) in zip(recipient_agencies, arrivals, strict=True):
        copy = Document(
            direction=registers.Direction.IN, agency_id=target.id, register_id=in_reg, number=in_number,
            year=registers.register_year(now), status=Status.REGISTERED, doc_type=doc.doc_type,
            notation=doc.notation, notation_key=doc.notation_key, sender=agency.name,
            sender_key=sender_key(agency.name),
            sender_unit_id=agency.id, date_issued=date_issued, received_at=now, summary=doc.summary,
            signer=doc.signer, urgency=doc.urgency, confidentiality=doc.confidentiality, page_count=doc.page_count,
            due_date=doc.due_date, source_document_id=doc.id, created_by=None)
        uow.session.add(copy)
        await uow.session.flush()
        search.new_document(uow, copy.id)
        job_ids += await _attach(uow, copy, files, None)
        await access.grant(uow, copy.id, Reason.RECEIVED, unit_id=target.id)
        await search.index_document(uow, copy)
        copies.append(copy)

    await audit.record(uow, actor, "document.issue", "document", doc.id, number=number, notation=doc.notation,
                       series=series, year=doc.year, delivered_to=[c.agency_id for c in copies])
    for copy in copies:
        await audit.record(uow, actor, "document.receive", "document", copy.id, number=copy.number,
                           year=copy.year, source_document_id=doc.id, agency_id=copy.agency_id)
        uow.emit(f"unit:{copy.agency_id}", "document.received", document_id=copy.id, number=copy.number)
    uow.emit(f"document:{doc.id}", "document.issued", notation=doc.notation)
    uow.emit(f"user:{doc.created_by}", "draft.issued", document_id=doc.id)
    if blobs is not None:
        await signatures.sign_issued(uow, actor, blobs, doc)
    if not doc.confidential:  # recipients at other installations receive it through their exchange peer (#16)
        for peer in await exchange_outbox.peers_for_recipients(uow, agency.id, doc.recipients or []):
            link = await edxml.out_link(uow, doc, agency)
            await exchange_outbox.queue_document(uow, peer, doc.id, link.remote_document_id, actor.id)
    return doc, copies, job_ids


async def drafts(uow: UnitOfWork, actor: User, *, status: str | None = None) -> list[Document]:
    """Outgoing drafts the actor wrote or is asked to approve, and (clerks) approved ones to issue."""
    viewer = await access.viewer_for(uow, actor)
    q = select(Document).where(Document.direction == registers.Direction.OUT, access.visible(viewer),
                               Document.status != Status.ISSUED)
    if status:
        q = q.where(Document.status == status)
    return list((await uow.session.scalars(q.order_by(Document.updated_at.desc()).limit(200))).all())


async def pending_approvers(uow: UnitOfWork, doc_ids: Sequence[int]) -> dict[int, int]:
    """Whose turn it is to approve, for a list of drafts in review (one query): document id -> approver."""
    if not doc_ids:
        return {}
    rows = await uow.session.execute(select(ApprovalStep.document_id, ApprovalStep.approver_id).where(
        ApprovalStep.document_id.in_(list(doc_ids)), ApprovalStep.status == "pending"))
    return {d: a for d, a in rows.all()}


async def version_count(uow: UnitOfWork, doc_id: int) -> int:
    return int(await uow.session.scalar(select(func.count()).select_from(DocumentVersion)
                                        .where(DocumentVersion.document_id == doc_id)) or 0)
