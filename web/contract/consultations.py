"""Contract of the written consultation API (phiếu lấy ý kiến thành viên, issue 20)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from web.contract.core import Body, Date, DateTime, Flag, Ids, OptInt, Out, Text, require
from web.contract.meetings import DocumentSearch, PageWords


class ConsultationSummary(Out):
    id: int
    title: str
    state: str
    state_label: str
    deadline: str
    confidential: bool


class ConsultationList(Out):
    consultations: list[ConsultationSummary]
    office: bool


class Consultation(ConsultationSummary):
    """A consultation: questions, documents, counts; each member's answers for the office and the signer
    (``members``, ``not_answered``), for everyone once it is closed; ``result`` once closed."""

    questions: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    answered: int
    total: int
    me: dict[str, Any]
    result: dict[str, Any] | None = None
    signed: dict[str, Any] | None = None  # the signer's signed result report: at, certificate, size, file
    dossier: dict[str, Any] | None = None  # the work dossier holding the signed report (for its owner: id, title, url)
    may_sign: bool = False


class ConsultationDocumentMeta(Out):
    id: int
    consultation_id: int
    kind: str
    title: str
    page_count: int
    page_sizes: list[list[float]]
    widths: list[int]


class ConsultationProgress(Out):
    ok: bool
    answered: int
    total: int


class ConsultationQuestion(Body):
    text: Text = ""
    kind: Text = ""
    options: list[Any] | None = None


class ConsultationDocumentRef(Body):
    upload_id: OptInt = None
    kind: Text = ""
    title: Text = ""


class ConsultationCreate(Body):
    """``questions``: [{text, kind: yes_no | choice, options}]; ``member_ids`` empty: the whole committee
    (the leaders of the office's agency); ``rule``: a preset of the voting rules (half_members ...)."""

    model_config = ConfigDict(json_schema_extra=require("title", "deadline", "questions"))
    title: Text = ""
    description: Text = ""
    deadline: DateTime = None
    questions: list[ConsultationQuestion] | None = None
    member_ids: Ids = []
    signer_id: OptInt = None
    documents: list[ConsultationDocumentRef] | None = None
    confidential: Flag = False
    rule: Text = ""


class ConsultationAnswer(Body):
    question: OptInt = None
    choice: Any = None
    comment: Text = ""


class ConsultationAnswers(Body):
    model_config = ConfigDict(json_schema_extra=require("answers"))
    answers: list[ConsultationAnswer] | None = None


class ConsultationTask(Body):
    assignee_id: OptInt = None
    assignee_unit_id: OptInt = None
    deadline: Date = None
    text: Text = ""


__all__ = ["Consultation", "ConsultationAnswer", "ConsultationAnswers", "ConsultationCreate",
           "ConsultationDocumentMeta", "ConsultationDocumentRef", "ConsultationList", "ConsultationProgress",
           "ConsultationQuestion", "ConsultationSummary", "ConsultationTask", "DocumentSearch", "PageWords"]
