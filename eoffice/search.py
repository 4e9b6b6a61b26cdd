"""Full-text search over documents, insensitive to Vietnamese diacritics, ranked, access-filtered.

The indexed text is the folded words (``eoffice.textfold.words``) of the number/notation, sender,
summary, signer, type name and the extracted text of the attachments, so ``cong van trien khai``
finds ``Công văn triển khai`` and ``123 ubnd vx`` finds ``123/UBND-VX``.

- PostgreSQL: ``documents.search_vector`` = ``to_tsvector('simple', folded words)`` (built in
  Python, ``tsvector_literal``: cheaper than PostgreSQL's parser) plus a few lexemes that are not
  words (they start with ``~``; words are ``[0-9a-z]+``): the document's reader keys (``~u:7``,
  ``~g:3``, ``~r:1``, ``eoffice.access.reader_keys``), its recency bucket (``~b:12``: ids 12*8192 ..
  12*8192+8191) and the year and month of its date issued (``~y:2025``, ``~m:202511``: a date range
  is an OR of the whole years and months it covers, so a range far in the past does not make the
  rounds below visit every newer row). One GIN index (stock PostgreSQL, no extension) then answers
  "these words, in these buckets, readable with one of my keys" by intersecting posting lists,
  without visiting rows the user may not read or old rows. Ranked with ``ts_rank_cd`` over the
  matches of the newest buckets, widened until there are ``candidates`` of them. An empty query
  (filters only) lists the newest documents the same way, without words, and so do the document
  lists (``newest_visible``, ``eoffice.documents.list_documents``). The keys are rewritten whenever
  grants or the fields of the clerk's rule change (the services say so: ``keys_changed``); hits are
  checked once more with ``access.visible``.
- SQLite: an FTS5 table ``documents_fts`` (rowid = document id), ranked with ``bm25``. The
  migration creates it; Alembic is told below not to propose dropping it on autogenerate.

Every search applies the access rule (on PostgreSQL through the reader keys, on SQLite with
``eoffice.access.visible``) and the page of hits passes ``access.visible`` again: a document the
user may not see is never a hit.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, cast, exists, func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from eoffice import access, doctypes
from eoffice.org import User
from eoffice.schema.documents import Attachment, Document, Grant
from eoffice.schema.tasks import Task
from eoffice.textfold import fold, folded_words, words
from storage.db import UnitOfWork
from storage.errors import Invalid

FTS_TABLE = "documents_fts"
FTS_TABLES = {FTS_TABLE} | {f"{FTS_TABLE}_{s}" for s in ("data", "idx", "content", "docsize", "config")}
MAX_INDEX_CHARS = 400_000  # a tsvector holds at most 1 MB; the start of a long document is enough
MAX_QUERY_WORDS = 12
BUCKET_BITS = 13  # 8192 consecutive document ids share a recency bucket (PostgreSQL)
# GIN walks the union of OR-ed buckets (their entries are each the rarest of a query): past this
# many, a round bounds the id instead and lets the words and keys drive the index scan
MAX_ROUND_BUCKETS = 32
# a common word needs a full bucket anyway, and a rarer one a density measured on more than a few ids
FIRST_ROUND_IDS = 4096
# matches ranked at least (PostgreSQL): every match of a specific query, the newest 1000 or so of a
# common one. The cost of a common word is proportional to it: at 1M documents on 2 busy cores
# (load 6.5) a clerk's p95 was 48-66 ms with 2000, 24-28 ms with 1000 (bench/search.py).
CANDIDATES = 1000
# a range of dates issued of at most this many days starts the rounds at its newest id (~40 us a day)
MAX_SPAN_DAYS = 800
DATE_LEXEMES = True  # a date range narrows the GIN lookup by year/month lexemes (False: bench's "before")


def index_text(*parts: str) -> str:
    return folded_words(" ".join(p for p in parts if p))[:MAX_INDEX_CHARS]


# to_tsvector's limits (PostgreSQL's tsearch: MAXSTRLEN, MAXENTRYPOS, MAXNUMPOS): a longer word is
# left out (and takes no position), later positions count as the last one, and a lexeme keeps
# its first 255 positions
MAX_LEXEME = 2047
LAST_POS = (1 << 14) - 1
MAX_POSITIONS = 255
# The default parser reads a word starting with digits, an e and digits as a number in scientific
# notation up to there: "5e3x" is two tokens, "5e3" and "x" (words are [0-9a-z]+ and never hold
# anything else it would split at)
_SFLOAT = re.compile(r"\b([0-9]+e[0-9]+)(?=[a-z])")
_SFLOAT_HINT = re.compile(r"[0-9]e[0-9]")  # rare in any text: the exact pattern is looked for only then
_POSITIONS = [str(i) for i in range(1, LAST_POS + 1)]


def tsvector_literal(body: str) -> str:
    """``to_tsvector('simple', body)`` as tsvector input text, for a body of folded words
    (``index_text``): the same lexemes and positions (tests compare them on PostgreSQL).

    PostgreSQL's text search parser takes ~11 ms to read the 80 000 characters of a 40-page
    document (it tests every character through the C library's wide-character functions); the
    words here are known already, and reading this text back as a tsvector takes it ~2 ms."""
    tokens = (_SFLOAT.sub(r"\1 ", body) if _SFLOAT_HINT.search(body) else body).split()
    if tokens and max(map(len, tokens)) > MAX_LEXEME:
        tokens = [t for t in tokens if len(t) <= MAX_LEXEME]
    positions: collections.defaultdict[str, list[str]] = collections.defaultdict(list)
    # for each of the first LAST_POS tokens, its list .append(its position), looped in C
    collections.deque(map(list.append, map(positions.__getitem__, tokens), _POSITIONS), maxlen=0)
    last = _POSITIONS[-1]
    for w in dict.fromkeys(tokens[LAST_POS:]):  # every later position is LAST_POS, once
        p = positions[w]
        if not p or p[-1] != last:
            p.append(last)
    return " ".join([f"{w}:{','.join(p[:MAX_POSITIONS])}" for w, p in positions.items()])


def bucket(doc_id: int) -> int:
    return doc_id >> BUCKET_BITS


def meta_lexemes(doc_id: int, reader_keys: Iterable[str], date_issued: dt.date | None = None) -> list[str]:
    """The non-word lexemes of a document's vector: its recency bucket, its reader keys, and the
    year and month of its date issued."""
    when = [f"~y:{date_issued.year}", f"~m:{date_issued:%Y%m}"] if date_issued is not None else []
    return [f"~b:{bucket(doc_id)}", *when, *sorted(f"~{k}" for k in reader_keys)]


def date_lexemes(first: dt.date, last: dt.date) -> list[str]:
    """Lexemes matching exactly the documents issued in the months from ``first``'s to ``last``'s:
    a year lexeme for each whole year, month lexemes for the rest. The dates themselves are
    checked on the rows (a range rarely starts on the 1st)."""
    out: list[str] = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        if m == 1 and (y < last.year or last.month == 12):
            out.append(f"~y:{y}")
            y += 1
        else:
            out.append(f"~m:{y}{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _tsquery_any(lexemes: Iterable[str]) -> str:
    """``'~a' | '~b'``: lexemes are ``[~0-9a-z:]`` (never user input), safe inside quotes."""
    return " | ".join(f"'{x}'" for x in lexemes)


# newest and oldest id issued in [first, last]: per day present in the range (a loose index scan
# on ix_documents_date_issued), the last and first id of that day; a plain max(id) would read
# every entry of the range or walk the primary key from the newest document
_ID_SPAN = text("""
WITH RECURSIVE d(day) AS (
  (SELECT date_issued FROM documents WHERE date_issued BETWEEN :first AND :last ORDER BY date_issued DESC LIMIT 1)
  UNION ALL
  SELECT (SELECT date_issued FROM documents WHERE date_issued < d.day AND date_issued >= :first
          ORDER BY date_issued DESC LIMIT 1) FROM d WHERE d.day IS NOT NULL)
SELECT max((SELECT x.id FROM documents x WHERE x.date_issued = d.day ORDER BY x.id DESC LIMIT 1)),
       min((SELECT x.id FROM documents x WHERE x.date_issued = d.day ORDER BY x.id LIMIT 1))
FROM d WHERE d.day IS NOT NULL""")


# the words of a document whose keys are stored already: its meta lexemes (keys, bucket, dates) stay
_REPLACE_WORDS = text(
    "UPDATE documents SET search_vector = CAST(:vector AS tsvector) || array_to_tsvector("
    "ARRAY(SELECT u.lexeme FROM unnest(search_vector) AS u WHERE u.lexeme LIKE '~%')) WHERE id = :id"
)


async def index_document(uow: UnitOfWork, doc: Any, texts: Sequence[str] | None = None) -> None:
    """(Re)compute a document's index entry; call after any change of its searchable fields.
    ``texts``: its attachments' texts in attachment id order, when the caller has them (read if not)."""
    await index_documents(uow, [(doc, texts)])


async def index_documents(uow: UnitOfWork, items: Sequence[tuple[Any, Sequence[str] | None]]) -> None:
    """``index_document`` for several documents, in one statement (two on SQLite) when their keys
    are stored already.

    On PostgreSQL the reader keys and other meta lexemes in the vector are kept as they are,
    after the changes noted so far (``keys_changed``) are written. Only a new document whose keys
    are still pending (``new_document``) gets them written here."""
    if not items:
        return
    await uow.session.flush()
    if uow.dialect == "postgresql":
        await write_keys(uow)  # noted grants and fields reach the stored keys before they are kept
    bodies: list[tuple[Any, str]] = []
    for doc, texts in items:
        if texts is None:
            texts = (await uow.session.scalars(
                select(Attachment.text).where(Attachment.document_id == doc.id).order_by(Attachment.id))).all()
        t = doctypes.BY_CODE.get(doc.doc_type)
        bodies.append((doc, index_text(doc.notation, doc.sender, doc.summary, doc.signer, t.name if t else "",
                                       *texts)))
    if uow.dialect == "postgresql":
        pending: set[int] = uow.session.sync_session.info.get(KEYS_PENDING, set())
        keep = [{"id": doc.id, "vector": tsvector_literal(body)} for doc, body in bodies if doc.id not in pending]
        for doc, body in bodies:
            if doc.id in pending:  # a new document: its keys are written with its words
                await _index_new(uow, doc, body)
                pending.discard(doc.id)
        if keep:
            await uow.session.execute(_REPLACE_WORDS, keep)
    else:
        params = [{"id": doc.id, "body": body} for doc, body in bodies]
        await uow.session.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid = :id"), [{"id": p["id"]} for p in params])
        await uow.session.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:id, :body)"), params)


# A new document's vector: its words, its meta lexemes but its grants' keys, and the grants' keys
# (``u:<user>``, ``g:<unit>``) read by the same statement, which returns the grants it read.
_NEW_VECTOR = text(
    "UPDATE documents SET search_vector = CAST(:vector AS tsvector) || array_to_tsvector(CAST(:meta AS text[]) "
    "|| ARRAY(SELECT DISTINCT k FROM document_grants g, unnest(ARRAY['~u:' || g.user_id, '~g:' || g.unit_id]) AS k "
    "WHERE g.document_id = documents.id AND k IS NOT NULL)) WHERE id = :id "
    "RETURNING ARRAY(SELECT g.user_id FROM document_grants g WHERE g.document_id = documents.id ORDER BY g.id), "
    "ARRAY(SELECT g.unit_id FROM document_grants g WHERE g.document_id = documents.id ORDER BY g.id)"
)


async def _index_new(uow: UnitOfWork, doc: Any, body: str) -> None:
    """Words and reader keys of a new document in one statement (PostgreSQL). The statement
    writes the grants' keys as ``access.reader_keys`` wrote them when this was written; the rule
    then checks them against the grants the statement read, and rewrites them if it disagrees."""
    def facts(grants: list[tuple[int | None, int | None]]) -> access.DocFacts:
        return access.doc_facts(doc.agency_id, doc.confidentiality, doc.number, doc.status, grants)

    users, units = (await uow.session.execute(_NEW_VECTOR, {
        "id": doc.id, "vector": tsvector_literal(body),
        "meta": meta_lexemes(doc.id, access.reader_keys(facts([])), doc.date_issued)})).one()
    grants = list(zip(users, units, strict=True))
    written = access.reader_keys(facts([])) | {f"u:{u}" for u, _ in grants if u is not None} \
        | {f"g:{g}" for _, g in grants if g is not None}
    if written != access.reader_keys(facts(grants)):
        await uow.session.run_sync(lambda s: store_reader_keys(s.connection(), [doc.id]))


async def unindex_document(uow: UnitOfWork, doc_id: int) -> None:
    if uow.dialect != "postgresql":
        await uow.session.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid = :id"), {"id": doc_id})


_REPLACE_META = text(
    "UPDATE documents SET search_vector = ts_delete(coalesce(search_vector, ''::tsvector), "
    "ARRAY(SELECT u.lexeme FROM unnest(search_vector) AS u WHERE u.lexeme LIKE '~%')) "
    "|| array_to_tsvector(CAST(:meta AS text[])) WHERE id = :id"
)


def store_reader_keys(connection: Connection, doc_ids: Iterable[int]) -> None:
    """Rewrite the reader keys in the vectors of these documents from their current rows and
    grants (PostgreSQL; synchronous, in a connection of the transaction: ``write_keys``)."""
    ids = sorted(set(doc_ids))
    if not ids:
        return
    grant = Grant
    docs: dict[int, tuple[int, str, int | None, str]] = {}
    issued: dict[int, dt.date | None] = {}
    grants: dict[int, list[tuple[int | None, int | None]]] = {}
    for r in connection.execute(  # one row per grant, or one with no grant
            select(Document.id, Document.agency_id, Document.confidentiality, Document.number, Document.status,
                   Document.date_issued, grant.user_id, grant.unit_id)
            .outerjoin(grant, grant.document_id == Document.id).where(Document.id.in_(ids))):
        docs[r.id] = (r.agency_id, r.confidentiality, r.number, r.status)
        issued[r.id] = r.date_issued
        if r.user_id is not None or r.unit_id is not None:
            grants.setdefault(r.id, []).append((r.user_id, r.unit_id))
    params = [{"id": i, "meta": meta_lexemes(i, access.reader_keys(access.doc_facts(*d, grants.get(i, []))),
                                             issued[i])}
              for i, d in docs.items()]
    if params:
        connection.execute(_REPLACE_META, params)


# ---- keeping the reader keys of the search index in step (PostgreSQL) -------------------------
# The services that change what the keys are made of say so on their unit of work: a new document
# (``new_document``), a grant given or a field the rule or the index reads changed (``keys_changed``,
# ACCESS_FIELDS and INDEX_FIELDS below). The keys are rewritten in the same transaction, before a
# search reads them and before the commit, from the rows as they are then. A change made without
# telling (a Core ``update``, an ORM edit outside the services) must call ``keys_changed`` too.

ACCESS_FIELDS = ("agency_id", "confidentiality", "number", "status")  # what the clerk's rule reads
INDEX_FIELDS = (*ACCESS_FIELDS, "date_issued")  # also in the vector: its year and month

KEYS_PENDING = "eoffice_reader_keys_pending"  # session.info: new documents whose keys are not stored yet
KEYS_CHANGED = "eoffice_reader_keys_changed"  # session.info: documents whose stored keys are out of date
_KEYS_HOOKED = "eoffice_reader_keys_hooked"  # session.info: the commit writes what is left


def _keys_info(uow: UnitOfWork) -> dict[Any, Any]:
    info = uow.session.sync_session.info
    if not info.get(_KEYS_HOOKED):
        info[_KEYS_HOOKED] = True
        uow.before_commit(lambda: write_keys(uow, new_documents=True))
    return info


def new_document(uow: UnitOfWork, doc_id: int) -> None:
    """A document was created in this unit of work. Its keys are not written now: its words
    follow (registration gives its grant, then indexes it), and ``index_document`` writes its keys
    and words in one statement, from the rows as they are then. If nothing indexes it, the commit
    writes them."""
    if uow.dialect == "postgresql":
        _keys_info(uow).setdefault(KEYS_PENDING, set()).add(doc_id)


def keys_changed(uow: UnitOfWork, doc_ids: Iterable[int]) -> None:
    """Grants of these documents were given, or a field the access rule or the index reads
    changed: their stored keys are rewritten before the next search reads them, or at the commit."""
    if uow.dialect == "postgresql":
        _keys_info(uow).setdefault(KEYS_CHANGED, set()).update(doc_ids)


async def write_keys(uow: UnitOfWork, new_documents: bool = False) -> None:
    """Rewrite the keys noted by ``keys_changed`` (PostgreSQL), after a flush; with
    ``new_documents`` (the commit) also those of new documents nothing indexed."""
    info = uow.session.sync_session.info
    pending: set[int] = info.get(KEYS_PENDING, set())
    if not (info.get(KEYS_CHANGED) or (new_documents and pending)):
        return
    await uow.session.flush()
    ids = info.pop(KEYS_CHANGED, set()) - pending  # a new one's are written with its words
    if new_documents:
        ids |= info.pop(KEYS_PENDING, set())
    if ids:
        await uow.session.run_sync(lambda s: store_reader_keys(s.connection(), ids))


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
    return or_(Document.agency_id == unit_id,
               exists(select(Task.id).where(Task.document_id == Document.id, Task.assignee_unit_id == unit_id)))


async def search(uow: UnitOfWork, actor: User, query: str = "", filters: Filters | None = None, *,
                 limit: int = 20, offset: int = 0, candidates: int = CANDIDATES) -> list[Hit]:
    """Ranked hits the actor may see. An empty query lists by filters, newest first.

    On PostgreSQL ranking is computed over the matches of the newest buckets, at least
    ``candidates`` of them when there are that many, which keeps a query for a very common word
    bounded on a million documents. SQLite (small installations) ranks every match."""
    terms = words(query)[:MAX_QUERY_WORDS]
    if len(query) > 500:
        raise Invalid("Chuỗi tìm kiếm quá dài.")
    viewer = await access.viewer_for(uow, actor)
    narrowing = _filters(filters or Filters())
    conds = [access.visible(viewer), *narrowing]
    limit = max(1, min(limit, 100))
    if uow.dialect == "postgresql":
        f = filters or Filters()
        pairs = (await _rounds_pg(uow, viewer, terms, narrowing, limit + offset, candidates,
                                  (f.date_from, f.date_to)))[offset:]
    elif not terms:
        rows = (await uow.session.scalars(
            select(Document).where(*conds).order_by(Document.created_at.desc(), Document.id.desc())
            .limit(limit).offset(offset))).all()
        return [Hit(d, 0.0) for d in rows]
    else:
        match = " ".join(f'"{t}"' for t in terms)
        fts: ColumnClause[Any] = literal_column(FTS_TABLE)
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
        pairs = [(r[0], r[1]) for r in (await uow.session.execute(ranked)).all()]
    if not pairs:
        return []
    # the live rule once more on the page of hits: stale keys could hide a hit, never show one
    docs = {d.id: d for d in (await uow.session.scalars(
        select(Document).where(Document.id.in_([p[0] for p in pairs]), access.visible(viewer)))).all()}
    return [Hit(docs[p[0]], float(p[1])) for p in pairs if p[0] in docs]


async def newest_visible(uow: UnitOfWork, viewer: access.Viewer, conds: list[ColumnElement[bool]],
                         want: int) -> list[tuple[int, float]]:
    """(id, 0) of the newest ``want`` documents the viewer may see that meet ``conds``, newest
    first, through the reader keys of the search vector (PostgreSQL; lists)."""
    return await _rounds_pg(uow, viewer, [], conds, want, 0)


async def _rounds_pg(uow: UnitOfWork, viewer: access.Viewer, terms: list[str], conds: list[ColumnElement[bool]],
                     want: int, candidates: int, dates: tuple[dt.date | None, dt.date | None] = (None, None)
                     ) -> list[tuple[int, float]]:
    """(id, rank) of the best ``want`` matches among the newest ones; without words, the newest
    ``want`` documents the viewer may see (rank 0).

    Rounds go back in time bucket by bucket, from the newest, until ``candidates`` matches (``want``
    documents without words) were seen: the first round takes the newest bucket (with words, and the
    one before when the newest holds fewer than ``FIRST_ROUND_IDS`` ids), each next one as
    many buckets as the density of matches so far says are missing (x4 while there was none). Each
    round is one GIN lookup of words & buckets & reader keys that ranks only its own rows; a round
    wider than ``MAX_ROUND_BUCKETS`` (a sparse match: few rows, many buckets) drops the buckets and
    bounds the id instead. A range of dates issued adds its year and month lexemes to every round
    (``date_lexemes``; an open end is closed at the first or last date issued, read from the
    index on it), and a range of up to ``MAX_SPAN_DAYS`` days bounds the rounds to the newest and
    oldest id issued in it (read from the index on (date issued, id), one day at a time), so a
    range far back starts where its documents are. The best of all rounds are the best overall,
    since a rank depends on the document alone."""
    await write_keys(uow)  # keys noted in this unit of work are stored before they are read
    # JIT compilation costs ~90 ms per query here and pays off only for long analytics; the plan
    # depends on the tsquery's words, so no generic plan for a prepared statement
    floor = 0
    top = (await uow.session.execute(select(
        func.set_config("jit", "off", True), func.set_config("plan_cache_mode", "force_custom_plan", True),
        func.max(Document.id)))).one()[2]
    if top is None:
        return []
    words_q = func.to_tsquery("simple", " & ".join(terms)) if terms else None
    keys = _tsquery_any(f"~{k}" for k in sorted(access.viewer_keys(viewer)))
    if DATE_LEXEMES and (dates[0] or dates[1]):
        first, last = (await uow.session.execute(
            select(func.min(Document.date_issued), func.max(Document.date_issued)))).one()
        if first is None or last is None or (dates[0] and dates[0] > last) or (dates[1] and dates[1] < first):
            return []  # nothing issued in the range (the rows' own check would say the same)
        first, last = max(first, dates[0] or first), min(last, dates[1] or last)
        months = date_lexemes(first, last)
        if not months:
            return []
        keys = f"({keys}) & ({_tsquery_any(months)})"
        newest = await uow.session.scalar(select(Document.date_issued).where(Document.id == top))
        in_range = newest is not None and first <= newest <= last  # then the rounds start where they would
        if not in_range and (last - first).days <= MAX_SPAN_DAYS:  # start at the range's newest id, stop at its oldest
            top, floor = (await uow.session.execute(_ID_SPAN, {"first": first, "last": last})).one()
            if top is None:
                return []
    goal = candidates if terms else want
    found: list[tuple[tuple[Any, ...], int, float]] = []  # (sort key, id, rank)
    seen, hi, width = 0, top, FIRST_ROUND_IDS if terms else 1
    while hi >= floor and seen < goal:
        lo_bucket = bucket(max(0, hi - width + 1))
        if 0 < bucket(hi) - lo_bucket + 1 <= MAX_ROUND_BUCKETS:
            buckets = _tsquery_any(f"~b:{b}" for b in range(lo_bucket, bucket(hi) + 1))
            within, bound = cast(f"({buckets}) & ({keys})", TSQUERY), []
        else:
            within, bound = cast(keys, TSQUERY), [Document.id <= hi, Document.id >= lo_bucket << BUCKET_BITS]
        if words_q is not None:
            matched = (
                select(Document.id.label("id"), func.ts_rank_cd(Document.search_vector, words_q).label("rank"),
                       func.count().over().label("n"))
                .where(Document.search_vector.op("@@")(words_q.op("&&")(within)), *bound, *conds)
                .subquery()
            )
            rows = (await uow.session.execute(
                select(matched).order_by(matched.c.rank.desc(), matched.c.id.desc()).limit(want))).all()
            seen += rows[0].n if rows else 0
            found.extend(((-r.rank, -r.id), r.id, float(r.rank)) for r in rows)
        else:
            latest = (await uow.session.execute(
                select(Document.id, Document.created_at).where(Document.search_vector.op("@@")(within), *bound, *conds)
                .order_by(Document.created_at.desc(), Document.id.desc()).limit(want))).all()
            seen += len(latest)
            found.extend(((-r.created_at.timestamp(), -r.id), r.id, 0.0) for r in latest)
        hi = (lo_bucket << BUCKET_BITS) - 1
        covered = top - hi
        width = covered * 4 if not seen else math.ceil((goal - seen) * covered / seen * 1.25)
    found.sort(key=lambda f: f[0])
    return [(i, rank) for _, i, rank in found[:want]]


# ---- Alembic: the FTS5 table is created by a migration, not by the models --------------------

def _keep_fts_tables(autogen_context: Any, upgrade_ops: Any, *args: Any) -> Any:
    """Autogenerate on SQLite reflects the FTS5 table and its shadow tables and would drop them."""
    from alembic.operations import ops  # migration tooling: only when Alembic compares
    from alembic.util.langhelpers import PriorityDispatchResult  # (as above)

    upgrade_ops.ops[:] = [
        op for op in upgrade_ops.ops if not (isinstance(op, ops.DropTableOp) and op.table_name in FTS_TABLES)
    ]
    return PriorityDispatchResult.CONTINUE


def _register_alembic_hook() -> None:
    try:
        from alembic.autogenerate.compare import comparators  # optional at run time: guarded
        from alembic.util.langhelpers import DispatchPriority  # (as above)
    except ImportError:  # pragma: no cover - alembic is a dependency
        return
    comparators.dispatch_for("autogenerate", qualifier="sqlite", priority=DispatchPriority.LAST)(_keep_fts_tables)


_register_alembic_hook()
