"""Written consultation of a committee's members (phiếu lấy ý kiến thành viên, issue 20).

A People's Committee decides either in a session or by asking its members in writing (Decree
39/2022/NĐ-CP): the office (Văn phòng, the ``clerk`` role that prepares meetings) sends the draft
documents and the submission (tờ trình) with one or more questions and a deadline; each member
answers every question (agree / disagree / other opinion, or one of several options) with an
optional comment and may change the answer until the deadline. At the deadline (or earlier, when
the office closes it) the answers are counted by the legal rule of ``meetings.voting_rules``
(``half_members`` by default: more than half of ALL consulted members, not of the answers), a
report PDF lists each member's answers and comments, and the result can become an e-office task. The
designated signer signs the report with their personal certificate (``sign_report``: PAdES through
``minutes_record.sign_personal``, the signed PDF kept as a blob). ``remind_unanswered`` (run by the
``ConsultationRunner``) notifies members who have not answered N hours before the deadline, once each.

Who sees a consultation: the members consulted, the signer, and the office (its creator and the
clerks of the creator's unit). A confidential one does not exist for anyone else (404); an open one
answers others 403. Answers are named by law: the office and the signer see each answer, members see
the counts only (their own answer apart) until the consultation is closed.

Live progress: topic ``consultation:{id}``, events ``consultation.progress`` [answered, total, state]
(counts only) and ``consultation.closed`` [state, passed].
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, func, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from eoffice import audit, dossiers, notifications, tasks, uploads
from eoffice.org import Role, Unit, User
from eoffice.schema.dossiers import Dossier
from meetings import minutes_record, render
from meetings import voting_rules as vr
from storage.db import Base, UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

TZ = "Asia/Ho_Chi_Minh"
PREFIX = "consultation:"
READ_LIMIT = 512 * 1024 * 1024
MAX_QUESTIONS = 20
MAX_OPTIONS = 20
MAX_MEMBERS = 200

clock: Callable[[], dt.datetime] = utcnow  # tests set it to drive time


class State:
    OPEN = "open"
    CLOSED = "closed"


STATE_LABELS = {State.OPEN: "Đang lấy ý kiến", State.CLOSED: "Đã kết thúc"}


class Kind:
    YES_NO = "yes_no"  # đồng ý / không đồng ý / ý kiến khác
    CHOICE = "choice"  # one of several options


YES_NO_CHOICES = {"agree": "Đồng ý", "disagree": "Không đồng ý", "other": "Ý kiến khác"}
DOC_KINDS = {"draft": "Dự thảo", "submission": "Tờ trình"}


def topic(consultation_id: int) -> str:
    return f"{PREFIX}{consultation_id}"


# ---------------------------------------------------------------- tables


class Consultation(Base):
    __tablename__ = "consultations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    rule: Mapped[str] = mapped_column(String(30), default="half_members")  # a voting_rules preset
    deadline: Mapped[dt.datetime] = mapped_column(index=True)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    signer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    office_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    state: Mapped[str] = mapped_column(String(20), default=State.OPEN, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_reason: Mapped[str] = mapped_column(String(20), default="")  # office | deadline
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    task_id: Mapped[int | None] = mapped_column(Integer)
    # the result report as the designated signer signed it (PAdES, personal certificate)
    signed_blob_key: Mapped[str | None] = mapped_column(String(64))
    signed_size: Mapped[int | None] = mapped_column(Integer)
    signed_at: Mapped[dt.datetime | None] = mapped_column()
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_certificate: Mapped[str] = mapped_column(String(500), default="", server_default="")
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id", ondelete="SET NULL"))  # signed report


class ConsultationMember(Base):
    __tablename__ = "consultation_members"
    __table_args__ = (UniqueConstraint("consultation_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column()
    changes: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[dt.datetime | None] = mapped_column()  # reminded before the deadline (once)


class ConsultationDocument(Base):
    __tablename__ = "consultation_documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="draft")  # draft | submission
    title: Mapped[str] = mapped_column(String(500))
    blob_key: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer)
    page_sizes: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "kind_label": DOC_KINDS.get(self.kind, self.kind),
                "title": self.title, "filename": self.filename, "size": self.size, "page_count": self.page_count,
                "page_sizes": self.page_sizes}


class ConsultationAnswer(Base):
    __tablename__ = "consultation_answers"
    __table_args__ = (UniqueConstraint("consultation_id", "user_id", "question"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    question: Mapped[int] = mapped_column(Integer)  # index into Consultation.questions
    choice: Mapped[str] = mapped_column(String(20))  # agree | disagree | other | option number
    comment: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- access


class Standing:
    def __init__(self, *, member: bool, office: bool, signer: bool) -> None:
        self.member, self.office, self.signer = member, office, signer

    @property
    def can_view(self) -> bool:
        return self.member or self.office or self.signer

    @property
    def sees_answers(self) -> bool:
        return self.office or self.signer


async def standing(uow: UnitOfWork, user: User, c: Consultation) -> Standing:
    member = bool(await uow.session.scalar(select(ConsultationMember.id).where(
        ConsultationMember.consultation_id == c.id, ConsultationMember.user_id == user.id)))
    office = c.created_by == user.id or user.is_admin or (
        user.has_role(Role.CLERK) and user.unit_id is not None and user.unit_id == c.office_unit_id)
    return Standing(member=member, office=office, signer=c.signer_id == user.id)


async def load(uow: UnitOfWork, user: User, consultation_id: int, *, lock: bool = False) -> tuple[Consultation,
                                                                                                  Standing]:
    q = select(Consultation).where(Consultation.id == consultation_id)
    if lock:
        q = q.with_for_update()
    c = await uow.session.scalar(q)
    if c is None:
        raise NotFound("Không tìm thấy phiếu lấy ý kiến.")
    st = await standing(uow, user, c)
    if not st.can_view:
        if c.confidential:
            raise NotFound("Không tìm thấy phiếu lấy ý kiến.")
        raise Forbidden("Bạn không thuộc danh sách được lấy ý kiến.")
    return c, st


def _require_office(st: Standing) -> None:
    if not st.office:
        raise Forbidden("Chỉ Văn phòng (người chuẩn bị phiếu lấy ý kiến) được làm việc này.")


# ---------------------------------------------------------------- creating


def _questions(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise Invalid("Cần ít nhất một câu hỏi lấy ý kiến.", field="questions")
    if len(raw) > MAX_QUESTIONS:
        raise Invalid(f"Tối đa {MAX_QUESTIONS} câu hỏi.", field="questions")
    out = []
    for q in raw:
        if isinstance(q, str):
            q = {"text": q}
        if not isinstance(q, dict):
            raise Invalid("Câu hỏi không hợp lệ.", field="questions")
        text = str(q.get("text") or "").strip()
        if not text:
            raise Invalid("Cần nhập nội dung câu hỏi.", field="questions")
        kind = str(q.get("kind") or Kind.YES_NO)
        if kind == Kind.YES_NO:
            out.append({"text": text[:2000], "kind": kind, "options": []})
            continue
        if kind != Kind.CHOICE:
            raise Invalid("Loại câu hỏi chỉ nhận yes_no hoặc choice.", field="questions")
        options = q.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= MAX_OPTIONS:
            raise Invalid(f"Câu hỏi chọn phương án cần từ 2 đến {MAX_OPTIONS} phương án.", field="questions")
        labels = [str(o or "").strip()[:500] for o in options]
        if not all(labels):
            raise Invalid("Phương án không được để trống.", field="questions")
        out.append({"text": text[:2000], "kind": kind, "options": labels})
    return out


async def _agency_of(uow: UnitOfWork, unit_id: int | None) -> Unit | None:
    seen = 0
    while unit_id is not None and seen < 10:
        unit = await uow.session.get(Unit, unit_id)
        if unit is None:
            return None
        if unit.is_agency:
            return unit
        unit_id, seen = unit.parent_id, seen + 1
    return None


async def default_members(uow: UnitOfWork, actor: User) -> list[int]:
    """The whole committee: the active leaders of the office's agency (its own unit, not the departments)."""
    agency = await _agency_of(uow, actor.unit_id)
    if agency is None:
        return []
    users = (await uow.session.scalars(select(User).where(User.unit_id == agency.id, User.active.is_(True))
                                       .order_by(User.rank, User.id))).all()
    return [u.id for u in users if u.has_role(Role.LEADER)]


async def create(uow: UnitOfWork, actor: User, blobs: Any, *, title: str, deadline: dt.datetime | None,
                 questions: Any, member_ids: list[int] | None = None, signer_id: int | None = None,
                 documents: list[dict[str, Any]] | None = None, description: str = "",
                 confidential: bool = False, rule: str = "half_members") -> Consultation:
    if not (actor.has_role(Role.CLERK) or actor.is_admin):
        raise Forbidden("Chỉ Văn phòng (văn thư) được lập phiếu lấy ý kiến.")
    title = (title or "").strip()
    if not title:
        raise Invalid("Cần nhập tên phiếu lấy ý kiến.", field="title")
    if deadline is None:
        raise Invalid("Cần nhập hạn trả lời.", field="deadline")
    if deadline.tzinfo is None:
        raise Invalid("Thời gian phải kèm múi giờ.", field="deadline")
    if deadline <= clock():
        raise Invalid("Hạn trả lời phải ở tương lai.", field="deadline")
    if rule not in vr.PRESETS:
        raise Invalid("Quy tắc tính kết quả không hợp lệ.", field="rule")
    qs = _questions(questions)
    ids = list(dict.fromkeys(member_ids or [])) or await default_members(uow, actor)
    if not ids:
        raise Invalid("Cần chọn thành viên được lấy ý kiến.", field="member_ids")
    if len(ids) > MAX_MEMBERS:
        raise Invalid(f"Tối đa {MAX_MEMBERS} thành viên.", field="member_ids")
    found = set((await uow.session.scalars(select(User.id).where(User.id.in_(ids), User.active.is_(True)))).all())
    if found != set(ids):
        raise NotFound("Không tìm thấy người dùng.", field="member_ids")
    if signer_id is not None and await uow.session.get(User, signer_id) is None:
        raise NotFound("Không tìm thấy người ký.", field="signer_id")
    c = Consultation(title=title[:500], description=(description or "").strip(), questions=qs, rule=rule,
                     deadline=deadline.astimezone(dt.UTC), confidential=bool(confidential), signer_id=signer_id,
                     office_unit_id=actor.unit_id, created_by=actor.id, state=State.OPEN)
    uow.session.add(c)
    await uow.session.flush()
    for uid in ids:
        uow.session.add(ConsultationMember(consultation_id=c.id, user_id=uid))
    for n, d in enumerate(documents or [], start=1):
        if not isinstance(d, dict):
            raise Invalid("Tài liệu không hợp lệ.", field="documents")
        kind = str(d.get("kind") or "draft")
        if kind not in DOC_KINDS:
            raise Invalid("Loại tài liệu chỉ nhận draft hoặc submission.", field="documents")
        upload_id = d.get("upload_id")
        if not isinstance(upload_id, int) or isinstance(upload_id, bool):
            raise Invalid("Cần mã tệp tải lên (upload_id).", field="documents")
        upload = await uploads.claim(uow, actor, upload_id)
        info = await render.inspect(await blobs.read(upload.blob_key, limit=READ_LIMIT))
        name = str(d.get("title") or "").strip() or upload.filename.rsplit(".", 1)[0]
        uow.session.add(ConsultationDocument(consultation_id=c.id, kind=kind, title=name[:500],
                                             blob_key=upload.blob_key, filename=upload.filename, size=upload.size,
                                             page_count=info.page_count, page_sizes=info.sizes, position=n))
    await uow.session.flush()
    await audit.record(uow, actor, "consultation.create", "consultation", c.id, title=c.title, members=len(ids),
                       deadline=c.deadline.isoformat(), confidential=c.confidential, rule=rule)
    for uid in ids:
        uow.emit(f"user:{uid}", "notification", message=f"Phiếu lấy ý kiến: {c.title}",
                 url=f"/consultations/{c.id}")
    return c


# ---------------------------------------------------------------- answering


async def _progress(uow: UnitOfWork, c: Consultation) -> dict[str, int]:
    total = await uow.session.scalar(select(func.count()).where(ConsultationMember.consultation_id == c.id)) or 0
    answered = await uow.session.scalar(select(func.count()).where(
        ConsultationMember.consultation_id == c.id, ConsultationMember.answered_at.is_not(None))) or 0
    return {"answered": int(answered), "total": int(total)}


def _check_choice(q: dict[str, Any], choice: Any) -> str:
    if q["kind"] == Kind.YES_NO:
        if choice not in YES_NO_CHOICES:
            raise Invalid("Chỉ chọn: đồng ý, không đồng ý hoặc ý kiến khác.", field="choice")
        return str(choice)
    value = str(choice)
    if not re.fullmatch(r"[1-9][0-9]?", value) or int(value) > len(q["options"]):
        raise Invalid("Phương án đã chọn không có trong câu hỏi.", field="choice")
    return value


async def answer(uow: UnitOfWork, actor: User, consultation_id: int, answers: Any) -> dict[str, int]:
    """The member's answer to every question ({question, choice, comment}); again to change it."""
    c, st = await load(uow, actor, consultation_id, lock=True)
    if not st.member:
        raise Forbidden("Bạn không thuộc danh sách được lấy ý kiến.")
    if c.state != State.OPEN or clock() >= c.deadline:
        raise Conflict("Đã hết hạn lấy ý kiến, không nhận thêm hoặc thay đổi ý kiến.")
    if not isinstance(answers, list):
        raise Invalid("«answers» phải là một danh sách.", field="answers")
    given: dict[int, tuple[str, str]] = {}
    for a in answers:
        if not isinstance(a, dict):
            raise Invalid("Ý kiến không hợp lệ.", field="answers")
        q_index = a.get("question")
        if not isinstance(q_index, int) or isinstance(q_index, bool) or not 0 <= q_index < len(c.questions):
            raise Invalid("Câu hỏi không có trong phiếu.", field="question")
        choice = _check_choice(c.questions[q_index], a.get("choice"))
        comment = a.get("comment")
        comment = "" if comment is None else str(comment).strip()
        if len(comment) > 5000:
            raise Invalid("Ý kiến quá dài (tối đa 5000 ký tự).", field="comment")
        if choice == "other" and not comment:
            raise Invalid("Chọn «Ý kiến khác» thì cần ghi rõ ý kiến.", field="comment")
        given[q_index] = (choice, comment)
    if set(given) != set(range(len(c.questions))):
        raise Invalid("Cần trả lời tất cả các câu hỏi.", field="answers")
    existing = {a.question: a for a in (await uow.session.scalars(select(ConsultationAnswer).where(
        ConsultationAnswer.consultation_id == c.id, ConsultationAnswer.user_id == actor.id))).all()}
    now = utcnow()
    for q_index, (choice, comment) in given.items():
        row = existing.get(q_index)
        if row is None:
            uow.session.add(ConsultationAnswer(consultation_id=c.id, user_id=actor.id, question=q_index,
                                               choice=choice, comment=comment, updated_at=now))
        else:
            row.choice, row.comment, row.updated_at = choice, comment, now
    member = await uow.session.scalar(select(ConsultationMember).where(
        ConsultationMember.consultation_id == c.id, ConsultationMember.user_id == actor.id))
    assert member is not None
    changed = member.answered_at is not None
    if changed:
        member.changes += 1
    member.answered_at = now
    await uow.session.flush()
    await audit.record(uow, actor, "consultation.answer.change" if changed else "consultation.answer",
                       "consultation", c.id, choices=[given[i][0] for i in sorted(given)])
    progress = await _progress(uow, c)
    uow.emit(topic(c.id), "consultation.progress", state=c.state, **progress)
    return progress


# ---------------------------------------------------------------- closing and the result


async def _count(uow: UnitOfWork, c: Consultation) -> dict[str, Any]:
    preset = vr.PRESETS[c.rule]
    total = (await _progress(uow, c))["total"]
    rows = (await uow.session.scalars(select(ConsultationAnswer).where(
        ConsultationAnswer.consultation_id == c.id))).all()
    out = []
    for n, q in enumerate(c.questions):
        mine = [r.choice for r in rows if r.question == n]
        if q["kind"] == Kind.YES_NO:
            spec = vr.Spec(method=vr.Method.YES_NO_ABSTAIN, majority=preset.majority, base=preset.base)
            ballots: list[vr.Ballot] = [({"v": {"agree": "yes", "disagree": "no"}.get(ch, "abstain")}, 1)
                                        for ch in mine]
            res = vr.count(spec, ballots, present=total, entitled=total)
            counts = {"agree": res.counts["yes"], "disagree": res.counts["no"], "other": res.counts["abstain"]}
            bars = [{"key": k, "label": YES_NO_CHOICES[k], "count": counts[k]} for k in YES_NO_CHOICES]
            line = res.headline.replace("tán thành", "đồng ý")
        else:
            keys = tuple(range(1, len(q["options"]) + 1))
            spec = vr.Spec(method=vr.Method.SINGLE, options=keys, majority=preset.majority, base=preset.base)
            res = vr.count(spec, [({"o": [int(ch)]}, 1) for ch in mine], present=total, entitled=total)
            bars = [{"key": str(k), "label": q["options"][k - 1], "count": res.counts[str(k)]} for k in keys]
            line = res.headline
            if res.passed:
                line = "Phương án được chọn: " + ", ".join(q["options"][k - 1] for k in res.winners)
        out.append({"question": n, "text": q["text"], "kind": q["kind"], "passed": res.passed, "headline": line,
                    "answers": len(mine), "bars": bars,
                    "threshold": vr.threshold_text(preset.majority, res.base_value)})
    return {"rule": c.rule, "rule_label": preset.label, "explanation": preset.explanation, "total": total,
            "answered": len({r.user_id for r in rows}), "questions": out,
            "passed": all(q["passed"] for q in out)}


async def _close(uow: UnitOfWork, c: Consultation, actor: User | None, reason: str) -> Consultation:
    c.state = State.CLOSED
    c.closed_at = utcnow()
    c.closed_by = actor.id if actor else None
    c.close_reason = reason
    c.result = await _count(uow, c)
    await audit.record(uow, actor, "consultation.close", "consultation", c.id, reason=reason,
                       passed=c.result["passed"], answered=c.result["answered"], total=c.result["total"])
    uow.emit(topic(c.id), "consultation.closed", state=c.state, passed=c.result["passed"],
             answered=c.result["answered"], total=c.result["total"])
    return c


async def close(uow: UnitOfWork, actor: User, consultation_id: int) -> Consultation:
    """The office closes the consultation before its deadline."""
    c, st = await load(uow, actor, consultation_id, lock=True)
    _require_office(st)
    if c.state != State.OPEN:
        raise Conflict("Phiếu lấy ý kiến đã kết thúc.")
    return await _close(uow, c, actor, "office")


async def next_deadline(uow: UnitOfWork) -> dt.datetime | None:
    at: dt.datetime | None = await uow.session.scalar(
        select(func.min(Consultation.deadline)).where(Consultation.state == State.OPEN))
    return at


async def close_expired(uow: UnitOfWork) -> list[Consultation]:
    """Close every open consultation whose deadline has passed (idempotent: row locks, state re-checked)."""
    rows = (await uow.session.scalars(select(Consultation).where(
        Consultation.state == State.OPEN, Consultation.deadline <= clock()).with_for_update())).all()
    return [await _close(uow, c, None, "deadline") for c in rows if c.state == State.OPEN]


# ---------------------------------------------------------------- reading


def _fmt(value: dt.datetime | None) -> str:
    return value.astimezone(ZoneInfo(TZ)).strftime("%H:%M %d/%m/%Y") if value else ""


async def _names(uow: UnitOfWork, ids: set[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in (await uow.session.scalars(select(User).where(User.id.in_(wanted)))).all()}


def summary(c: Consultation) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "state": c.state, "state_label": STATE_LABELS.get(c.state, c.state),
            "deadline": c.deadline.isoformat(), "deadline_text": _fmt(c.deadline), "confidential": c.confidential,
            "passed": c.result["passed"] if c.result else None}


async def view(uow: UnitOfWork, user: User, consultation_id: int) -> dict[str, Any]:
    c, st = await load(uow, user, consultation_id)
    members = (await uow.session.scalars(select(ConsultationMember).where(
        ConsultationMember.consultation_id == c.id).order_by(ConsultationMember.id))).all()
    docs = (await uow.session.scalars(select(ConsultationDocument).where(
        ConsultationDocument.consultation_id == c.id).order_by(ConsultationDocument.position))).all()
    rows = (await uow.session.scalars(select(ConsultationAnswer).where(
        ConsultationAnswer.consultation_id == c.id).order_by(ConsultationAnswer.question))).all()
    wanted: set[int | None] = {c.signer_id, c.created_by}
    names = await _names(uow, wanted | {m.user_id for m in members})
    preset = vr.PRESETS[c.rule]
    mine = [{"question": r.question, "choice": r.choice, "comment": r.comment} for r in rows if r.user_id == user.id]
    out: dict[str, Any] = {
        **summary(c), "description": c.description, "questions": c.questions, "rule": c.rule,
        "rule_label": preset.label, "rule_explanation": preset.explanation,
        "signer": names[c.signer_id].full_name if c.signer_id in names else "",
        "created_by": names[c.created_by].full_name if c.created_by in names else "",
        "documents": [d.public() for d in docs], "topic": topic(c.id),
        "answered": sum(1 for m in members if m.answered_at), "total": len(members),
        "me": {"member": st.member, "office": st.office, "signer": st.signer, "answers": mine,
               "may_answer": st.member and c.state == State.OPEN and clock() < c.deadline},
        "closed_at": c.closed_at.isoformat() if c.closed_at else None, "close_reason": c.close_reason,
        "result": c.result, "task_id": c.task_id, "server_time": utcnow().isoformat(),
        "signed": {"at": _fmt(c.signed_at), "certificate": c.signed_certificate, "size": c.signed_size,
                   "file": f"/api/consultations/{c.id}/report-signed.pdf"} if c.signed_blob_key else None,
        "may_sign": st.signer and c.state == State.CLOSED and not c.signed_blob_key,
        "dossier": await _dossier_link(uow, user, c),
    }
    if st.sees_answers or c.state == State.CLOSED:  # named by law; members see each answer once closed
        by_user: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            by_user.setdefault(r.user_id, []).append({"question": r.question, "choice": r.choice,
                                                      "label": _choice_label(c, r.question, r.choice),
                                                      "comment": r.comment})
        out["members"] = [{"user_id": m.user_id, "name": names[m.user_id].full_name,
                           "title": names[m.user_id].title, "answered": m.answered_at is not None,
                           "answered_at": _fmt(m.answered_at), "answers": by_user.get(m.user_id, [])}
                          for m in members]
        out["not_answered"] = [x["name"] for x in out["members"] if not x["answered"]]
    return out


def _choice_label(c: Consultation, question: int, choice: str) -> str:
    q = c.questions[question]
    if q["kind"] == Kind.YES_NO:
        return YES_NO_CHOICES.get(choice, choice)
    return q["options"][int(choice) - 1]


async def list_for_user(uow: UnitOfWork, user: User, *, limit: int = 200) -> list[dict[str, Any]]:
    mine = select(ConsultationMember.consultation_id).where(ConsultationMember.user_id == user.id)
    conds = [Consultation.id.in_(mine), Consultation.created_by == user.id, Consultation.signer_id == user.id]
    if user.has_role(Role.CLERK) and user.unit_id is not None:
        conds.append(Consultation.office_unit_id == user.unit_id)
    q = select(Consultation).order_by(Consultation.deadline.desc()).limit(limit)
    if not user.is_admin:
        q = q.where(or_(*conds))
    return [summary(c) for c in (await uow.session.scalars(q)).all()]


async def document(uow: UnitOfWork, user: User, consultation_id: int, document_id: int) -> ConsultationDocument:
    c, _st = await load(uow, user, consultation_id)
    d = await uow.session.get(ConsultationDocument, document_id)
    if d is None or d.consultation_id != c.id:
        raise NotFound("Không tìm thấy tài liệu.")
    return d


# ---------------------------------------------------------------- report and task


def _write_report(d: dict[str, Any]) -> bytes:
    w = render.Writer()
    w.columns(d["agency"].upper() or "ỦY BAN NHÂN DÂN",
              "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc", size=10.5)
    w.space(10)
    w.text("BÁO CÁO KẾT QUẢ LẤY Ý KIẾN THÀNH VIÊN", style="bold", size=14, align="center", after=2)
    w.text(d["title"], style="bold", size=12, align="center", after=10)
    w.text(f"Hạn trả lời: {d['deadline_text']}. Kết thúc: {d['closed']}.")
    w.text(f"Quy tắc: {d['rule_label']}. {d['explanation']}")
    w.text(f"Số thành viên được lấy ý kiến: {d['total']}; đã trả lời: {d['answered']}.", after=8)
    w.text("I. KẾT QUẢ", style="bold", size=12, after=4)
    for q in d["questions"]:
        w.text(f"Câu {q['question'] + 1}. {q['text']}", style="bold", after=2)
        w.text("; ".join(f"{b['label']}: {b['count']}" for b in q["bars"]), indent=12, after=1)
        w.text(q["headline"], style="italic", indent=12, after=6)
    w.text("II. Ý KIẾN CỦA TỪNG THÀNH VIÊN", style="bold", size=12, after=4)
    for n, m in enumerate(d["members"], start=1):
        w.text(f"{n}. {m['name']}" + (f", {m['title']}" if m["title"] else ""), style="bold", after=1)
        if not m["answered"]:
            w.text("Không trả lời.", style="italic", indent=12, after=4)
            continue
        for a in m["answers"]:
            line = f"Câu {a['question'] + 1}: {a['label']}"
            if a["comment"]:
                line += f" — {a['comment']}"
            w.text(line, indent=12, after=1)
        w.space(4)
    w.space(12)
    w.columns("VĂN PHÒNG", "NGƯỜI KÝ")
    w.space(40)
    w.columns(d["created_by"], d["signer"], style="regular")
    w.doc.set_metadata({"title": f"Kết quả lấy ý kiến: {d['title']}", "producer": "eOffice phòng họp không giấy"})
    return w.to_bytes()


async def report_pdf(uow: UnitOfWork, actor: User, consultation_id: int) -> tuple[str, bytes]:
    v = await view(uow, actor, consultation_id)
    if v["state"] != State.CLOSED or not v["result"]:
        raise Conflict("Phiếu lấy ý kiến chưa kết thúc, chưa có báo cáo kết quả.")
    c, _st = await load(uow, actor, consultation_id)
    creator = await uow.session.get(User, c.created_by) if c.created_by else None
    agency = await _agency_of(uow, creator.unit_id if creator else None)
    data = {**v["result"], "title": v["title"], "deadline_text": v["deadline_text"], "closed": _fmt(c.closed_at),
            "members": v["members"], "created_by": v["created_by"], "signer": v["signer"],
            "agency": agency.name if agency else ""}
    return v["title"], await render.run(_write_report, data)


async def to_task(uow: UnitOfWork, actor: User, consultation_id: int, *, assignee_id: int | None = None,
                  assignee_unit_id: int | None = None, deadline: dt.date | None = None,
                  text: str = "") -> Consultation:
    """The office turns the closed consultation's result into an e-office task for follow-up (once)."""
    c, st = await load(uow, actor, consultation_id, lock=True)
    _require_office(st)
    if c.state != State.CLOSED or not c.result:
        raise Conflict("Chỉ giao nhiệm vụ khi phiếu lấy ý kiến đã kết thúc.")
    if c.task_id is not None:
        raise Conflict("Kết quả này đã thành nhiệm vụ.", task_id=c.task_id)
    if assignee_id is None and assignee_unit_id is None:
        raise Invalid("Cần chọn người hoặc đơn vị thực hiện.", field="assignee_id")
    verdict = "được thông qua" if c.result["passed"] else "không được thông qua"
    if c.confidential:
        title = "Nhiệm vụ từ kết quả lấy ý kiến thành viên (nội dung mật)"
        instruction = "Thực hiện theo kết quả lấy ý kiến thành viên (nội dung mật); xem phiếu lấy ý kiến."
    else:
        title = (text or "").strip() or f"Triển khai kết quả lấy ý kiến: {c.title}"
        instruction = f"Kết quả lấy ý kiến thành viên «{c.title}»: {verdict}. " + "; ".join(
            q["headline"] for q in c.result["questions"])
    task = await tasks.create_meeting_task(
        uow, actor, title=title[:500], instruction=instruction,
        assignee=tasks.Assignee(user_id=assignee_id, unit_id=assignee_unit_id), deadline=deadline,
        source={"consultation_id": c.id})
    c.task_id = task.id
    await audit.record(uow, actor, "consultation.task", "consultation", c.id, task_id=task.id,
                       assignee_user_id=assignee_id, assignee_unit_id=assignee_unit_id)
    return c


# ---------------------------------------------------------------- the signed report


async def _dossier_link(uow: UnitOfWork, user: User, c: Consultation) -> dict[str, Any] | None:
    """The work dossier holding the signed report, for its owner (a dossier is its owner's only)."""
    d = await uow.session.get(Dossier, c.dossier_id) if c.dossier_id else None
    if d is None or d.owner_id != user.id:
        return None
    return {"id": d.id, "title": d.title, "url": f"/dossiers/{d.id}"}


SIGN_HEADING = "NGƯỜI KÝ"  # the report's signature column (``_write_report``)


async def sign_report(uow: UnitOfWork, actor: User, blobs: Any, consultation_id: int, *,
                      passphrase: str) -> Consultation:
    """The designated signer signs the closed consultation's result report with their own certificate (once)."""
    c, _st = await load(uow, actor, consultation_id, lock=True)
    if c.signer_id is None or c.signer_id != actor.id:
        raise Forbidden("Chỉ người được giao ký mới ký báo cáo kết quả lấy ý kiến.")
    if c.state != State.CLOSED or not c.result:
        raise Conflict("Phiếu lấy ý kiến chưa kết thúc, chưa có báo cáo kết quả để ký.")
    if c.signed_blob_key:
        raise Conflict("Báo cáo kết quả đã được ký số.")
    _title, data = await report_pdf(uow, actor, consultation_id)
    creator = await uow.session.get(User, c.created_by) if c.created_by else None
    agency = await _agency_of(uow, creator.unit_id if creator else None)
    signed, subject = await minutes_record.sign_personal(
        actor, passphrase, data, heading=SIGN_HEADING, reason=f"Ký báo cáo kết quả lấy ý kiến: {c.title}"[:200],
        location=minutes_record.place_name(agency.name) if agency else "")
    info = await blobs.put_bytes(signed, content_type="application/pdf")
    c.signed_blob_key, c.signed_size, c.signed_at = info.key, info.size, utcnow()
    c.signed_by, c.signed_certificate = actor.id, subject
    await audit.record(uow, actor, "consultation.sign", "consultation", c.id, blob=info.key, size=info.size,
                       certificate=subject)
    # the signed report lands in a work dossier of the office that prepared the consultation (its creator)
    d = await dossiers.open_dossier(uow, actor, f"Hồ sơ lấy ý kiến: {c.title}", owner=creator or actor)
    c.dossier_id = d.id
    await dossiers.file_blob(uow, actor, d, blob_key=info.key, size=info.size,
                             file_name=f"Báo cáo kết quả lấy ý kiến số {c.id} (đã ký số).pdf",
                             source={"consultation_id": c.id})
    uow.emit(topic(c.id), "consultation.signed", state=c.state)
    return c


async def signed_report(uow: UnitOfWork, actor: User, blobs: Any, consultation_id: int) -> tuple[str, bytes]:
    """The signed result report, for whoever may read the report (the consultation closed)."""
    c, _st = await load(uow, actor, consultation_id)
    if not c.signed_blob_key:
        raise NotFound("Báo cáo kết quả chưa được ký số.")
    return c.title, await blobs.read(c.signed_blob_key, limit=READ_LIMIT)


# ---------------------------------------------------------------- reminders before the deadline


async def remind_unanswered(uow: UnitOfWork, config: notifications.Config, *, hours: float) -> int:
    """Members who have not answered an open consultation whose deadline is within ``hours`` get a
    ``consultation.due`` notification, once each (the row is claimed by a conditional update, so two
    processes never both remind). Returns how many were reminded."""
    now = clock()
    if hours <= 0:
        return 0
    rows = (await uow.session.execute(select(ConsultationMember, Consultation).join(
        Consultation, Consultation.id == ConsultationMember.consultation_id).where(
        Consultation.state == State.OPEN, Consultation.deadline > now,
        Consultation.deadline <= now + dt.timedelta(hours=hours),
        ConsultationMember.answered_at.is_(None), ConsultationMember.reminded_at.is_(None))
        .order_by(ConsultationMember.id))).all()
    sent = 0
    for m, c in rows:
        claimed = await uow.session.execute(update(ConsultationMember).where(
            ConsultationMember.id == m.id, ConsultationMember.reminded_at.is_(None),
            ConsultationMember.answered_at.is_(None)).values(reminded_at=utcnow())
            .execution_options(synchronize_session=False))
        if not getattr(claimed, "rowcount", 0):
            continue
        what = "Phiếu lấy ý kiến" + (" (nội dung mật)" if c.confidential else f" {notifications.quoted(c.title)}")
        text = f"{what} hết hạn trả lời lúc {_fmt(c.deadline)}; bạn chưa trả lời."
        await notifications.notify(uow, config, m.user_id, "consultation.due", text, f"/consultations/{c.id}",
                                   secret=c.confidential)
        sent += 1
    return sent


async def next_reminder(uow: UnitOfWork, hours: float) -> dt.datetime | None:
    """When the next reminder falls due: ``hours`` before the earliest deadline with someone not reminded."""
    if hours <= 0:
        return None
    at: dt.datetime | None = await uow.session.scalar(select(func.min(Consultation.deadline)).join(
        ConsultationMember, ConsultationMember.consultation_id == Consultation.id).where(
        Consultation.state == State.OPEN, ConsultationMember.answered_at.is_(None),
        ConsultationMember.reminded_at.is_(None)))
    return at - dt.timedelta(hours=hours) if at is not None else None


# ---------------------------------------------------------------- live topic


async def authorize(uow: UnitOfWork, user: User, name: str) -> bool:
    m = re.fullmatch(r"consultation:(\d+)", name)
    if not m:
        return False
    c = await uow.session.get(Consultation, int(m.group(1)))
    return c is not None and (await standing(uow, user, c)).can_view
