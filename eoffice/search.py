"""Full-text search over documents, insensitive to Vietnamese diacritics, ranked, access-filtered.

The indexed text is the folded words (``eoffice.textfold.words``) of the number/notation, sender,
summary, signer, type name and the extracted text of the attachments, so ``cong van trien khai``
finds ``Công văn triển khai`` and ``123 ubnd vx`` finds ``123/UBND-VX``.

- PostgreSQL: ``documents.search_vector`` = ``to_tsvector('simple', folded words)`` with a GIN
  index (stock PostgreSQL, no extension); ranked with ``ts_rank_cd``.
- SQLite: an FTS5 table ``documents_fts`` (rowid = document id), ranked with ``bm25``. The
  migration creates it; Alembic is told below not to propose dropping it on autogenerate.

Every query carries ``eoffice.access.visible``: a document the user may not see is never a hit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal_column, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from eoffice import access, doctypes
from eoffice.org import User
from eoffice.textfold import fold, words
from storage.db import UnitOfWork
from storage.errors import Invalid

FTS_TABLE = "documents_fts"
FTS_TABLES = {FTS_TABLE} | {f"{FTS_TABLE}_{s}" for s in ("data", "idx", "content", "docsize", "config")}
MAX_INDEX_CHARS = 400_000  # a tsvector holds at most 1 MB; the start of a long document is enough
MAX_QUERY_WORDS = 12


def index_text(*parts: str) -> str:
    return " ".join(words(" ".join(p for p in parts if p)))[:MAX_INDEX_CHARS]


async def index_document(uow: UnitOfWork, doc: Any) -> None:
    """(Re)compute a document's index entry; call after any change of its searchable fields."""
    from eoffice.documents import Attachment, Document

    texts = (await uow.session.scalars(
        select(Attachment.text).where(Attachment.document_id == doc.id).order_by(Attachment.id))).all()
    t = doctypes.BY_CODE.get(doc.doc_type)
    body = index_text(doc.notation, doc.sender, doc.summary, doc.signer, t.name if t else "", *texts)
    if uow.dialect == "postgresql":
        await uow.session.execute(
            update(Document).where(Document.id == doc.id).values(search_vector=func.to_tsvector("simple", body))
            .execution_options(synchronize_session=False)
        )
    else:
        await uow.session.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid = :id"), {"id": doc.id})
        await uow.session.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:id, :body)"),
                                  {"id": doc.id, "body": body})


async def unindex_document(uow: UnitOfWork, doc_id: int) -> None:
    if uow.dialect != "postgresql":
        await uow.session.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid = :id"), {"id": doc_id})


@dataclass(frozen=True)
class Filters:
    direction: str | None = None
    doc_type: str | None = None
    sender: str | None = None
    date_from: dt.date | None = None  # on the date issued (ngày ban hành)
    date_to: dt.date | None = None
    status: str | None = None
    unit_id: int | None = None  # held by this agency, or a task on it assigned to this unit
    confidentiality: str | None = None


@dataclass
class Hit:
    document: Any
    rank: float


def _filters(f: Filters) -> list[ColumnElement[bool]]:
    from eoffice.documents import Document

    out: list[ColumnElement[bool]] = []
    if f.direction:
        out.append(Document.direction == f.direction)
    if f.doc_type:
        doctypes.doc_type(f.doc_type)
        out.append(Document.doc_type == f.doc_type)
    if f.sender:
        out.append(Document.sender_key.contains(fold(f.sender), autoescape=True))
    if f.date_from:
        out.append(Document.date_issued >= f.date_from)
    if f.date_to:
        out.append(Document.date_issued <= f.date_to)
    if f.status:
        out.append(Document.status == f.status)
    if f.confidentiality:
        out.append(Document.confidentiality == f.confidentiality)
    if f.unit_id is not None:
        out.append(_unit_filter(f.unit_id))
    return out


def _unit_filter(unit_id: int) -> ColumnElement[bool]:
    from sqlalchemy import exists, or_

    from eoffice.documents import Document
    try:
        from eoffice.tasks import Task
    except ImportError:  # before the tasks module exists
        return Document.agency_id == unit_id
    return or_(Document.agency_id == unit_id,
               exists(select(Task.id).where(Task.document_id == Document.id, Task.assignee_unit_id == unit_id)))


async def search(uow: UnitOfWork, actor: User, query: str = "", filters: Filters | None = None, *,
                 limit: int = 20, offset: int = 0, candidates: int = 2000) -> list[Hit]:
    """Ranked hits the actor may see. An empty query lists by filters, newest first.

    Ranking is computed over at most ``candidates`` matches (the most recent ones), which keeps a
    query for a very common word bounded on a million documents."""
    from eoffice.documents import Document

    terms = words(query)[:MAX_QUERY_WORDS]
    if len(query) > 500:
        raise Invalid("Chuỗi tìm kiếm quá dài.")
    viewer = await access.viewer_for(uow, actor)
    conds = [access.visible(viewer), *_filters(filters or Filters())]
    limit = max(1, min(limit, 100))
    if not terms:
        rows = (await uow.session.scalars(
            select(Document).where(*conds).order_by(Document.created_at.desc(), Document.id.desc())
            .limit(limit).offset(offset))).all()
        return [Hit(d, 0.0) for d in rows]

    if uow.dialect == "postgresql":
        # JIT compilation costs ~90 ms per query here and pays off only for long analytics
        await uow.session.execute(text("SET LOCAL jit = off"))
        tsq = func.to_tsquery("simple", " & ".join(terms))
        matched = (
            select(Document.id.label("id"), Document.search_vector.label("v"))
            .where(Document.search_vector.op("@@")(tsq), *conds)
            .order_by(Document.id.desc()).limit(candidates).subquery()
        )
        rank = func.ts_rank_cd(matched.c.v, tsq).label("rank")
        ranked = select(matched.c.id, rank).order_by(rank.desc(), matched.c.id.desc()).limit(limit).offset(offset)
        pairs = (await uow.session.execute(ranked)).all()
    else:
        match = " ".join(f'"{t}"' for t in terms)
        fts = literal_column(FTS_TABLE)
        matched = (
            select(literal_column(f"{FTS_TABLE}.rowid").label("id"), func.bm25(fts).label("score"))
            .select_from(text(FTS_TABLE))
            .where(fts.op("MATCH")(match))
            .subquery()
        )
        ranked = (
            select(Document.id, (-matched.c.score).label("rank"))
            .join(matched, matched.c.id == Document.id)
            .where(*conds)
            .order_by(matched.c.score, Document.id.desc()).limit(limit).offset(offset)
        )
        pairs = (await uow.session.execute(ranked)).all()
    if not pairs:
        return []
    docs = {d.id: d for d in (await uow.session.scalars(
        select(Document).where(Document.id.in_([p[0] for p in pairs])))).all()}
    return [Hit(docs[p[0]], float(p[1])) for p in pairs if p[0] in docs]


# ---- Alembic: the FTS5 table is created by a migration, not by the models --------------------

def _keep_fts_tables(autogen_context: Any, upgrade_ops: Any, *args: Any) -> Any:
    """Autogenerate on SQLite reflects the FTS5 table and its shadow tables and would drop them."""
    from alembic.operations import ops
    from alembic.util.langhelpers import PriorityDispatchResult

    upgrade_ops.ops[:] = [
        op for op in upgrade_ops.ops if not (isinstance(op, ops.DropTableOp) and op.table_name in FTS_TABLES)
    ]
    return PriorityDispatchResult.CONTINUE


def _register_alembic_hook() -> None:
    try:
        from alembic.autogenerate.compare import comparators
        from alembic.util.langhelpers import DispatchPriority
    except ImportError:  # pragma: no cover - alembic is a dependency
        return
    comparators.dispatch_for("autogenerate", qualifier="sqlite", priority=DispatchPriority.LAST)(_keep_fts_tables)


_register_alembic_hook()
