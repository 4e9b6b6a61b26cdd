"""Meeting documents (PDF) with immutable versions, and the page-image cache of the tablet reader.

A document belongs to the meeting or to one agenda item (and then shares that item's access).
A new version is a new row pointing at a new blob: the old version, its pages and whatever was
attached to it (annotations, issue 6) stay as they were.

Page images are rendered lazily, one page at a time, at a bucketed width, and cached in the blob
store; ``meeting_page_cache`` maps (source blob, page, width, format) to the rendered blob, so the
same file uploaded twice (or to two meetings) renders once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import weakref
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from eoffice import audit, pdfpages, pdfsandbox, uploads
from eoffice.org import User
from meetings import prerender, render, rules, topics
from meetings.agenda import can_see, item_context, visible_item_ids
from meetings.meetings import Ctx, get_context, touch, user_names, view_context_of
from meetings.rules import Access, State
from meetings.schema import AgendaItem, Document, DocumentVersion, Meeting, PageRender
from storage.db import Database, UnitOfWork, utcnow
from storage.errors import Denied, Forbidden, Invalid, NotFound

log = logging.getLogger(__name__)

READ_LIMIT = 512 * 1024 * 1024  # a document is read whole into the PDF worker (uploads are capped lower)


class Blobs(Protocol):
    async def put_bytes(self, data: bytes, *, content_type: str = ...) -> Any: ...
    async def read(self, key: str, limit: int = ...) -> bytes: ...


# ---------------------------------------------------------------- adding documents and versions


async def _claim_pdf(uow: UnitOfWork, actor: User, blobs: Blobs, upload_id: int) -> tuple[uploads.Upload,
                                                                                           render.PdfInfo]:
    upload = await uploads.claim(uow, actor, upload_id)
    data = await blobs.read(upload.blob_key, limit=READ_LIMIT)
    info = await render.inspect(data)
    return upload, info


async def _may_add(uow: UnitOfWork, ctx: Ctx, item: AgendaItem | None) -> None:
    rules.require_editable(ctx.meeting.state)
    if ctx.access.manager:
        return
    if item is not None and item.presenter_id == ctx.access.user_id:
        return  # the presenter brings their own report
    raise Forbidden("Chỉ người tổ chức, chủ trì, thư ký hoặc người trình bày nội dung được đưa tài liệu lên.")


async def add_document(
    uow: UnitOfWork,
    actor: User,
    blobs: Blobs,
    meeting_id: int,
    *,
    upload_id: int,
    title: str = "",
    item_id: int | None = None,
) -> tuple[Document, DocumentVersion]:
    item = None
    if item_id is not None:
        ctx, item = await item_context(uow, actor, item_id)
        if item.meeting_id != meeting_id:
            raise NotFound("Không tìm thấy nội dung chương trình họp.")
    upload, info = await _claim_pdf(uow, actor, blobs, upload_id)
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    await _may_add(uow, ctx, item)
    last = await uow.session.scalar(select(func.max(Document.position)).where(Document.meeting_id == meeting_id,
                                                                              Document.item_id == item_id))
    name = (title or "").strip() or upload.filename.rsplit(".", 1)[0]
    doc = Document(meeting_id=meeting_id, item_id=item_id, title=name[:500], position=(last or 0) + 1,
                   created_by=actor.id)
    uow.session.add(doc)
    await uow.session.flush()
    version = DocumentVersion(document_id=doc.id, number=1, blob_key=upload.blob_key, filename=upload.filename,
                              size=upload.size, page_count=info.page_count, page_sizes=info.sizes,
                              uploaded_by=actor.id)
    uow.session.add(version)
    await uow.session.flush()
    doc.current_version_id = version.id
    touch(ctx.meeting)
    await audit.record(uow, actor, "meeting.document.add", "meeting", meeting_id, document_id=doc.id,
                       version_id=version.id, item_id=item_id, sha256=upload.blob_key, pages=info.page_count)
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(meeting_id), "documents.changed", item_id=item_id, document_id=doc.id,
                 version_id=version.id)
    prerender.after_commit(uow, [version.id])  # its first pages are rendered before anyone opens it (#22)
    return doc, version


async def add_version(uow: UnitOfWork, actor: User, blobs: Blobs, document_id: int, *, upload_id: int,
                      note: str = "") -> DocumentVersion:
    doc = await uow.session.get(Document, document_id)
    if doc is None:
        raise NotFound("Không tìm thấy tài liệu.")
    item = None
    if doc.item_id is not None:
        _, item = await item_context(uow, actor, doc.item_id)
    upload, info = await _claim_pdf(uow, actor, blobs, upload_id)
    ctx = await get_context(uow, actor, doc.meeting_id, lock=True)
    await _may_add(uow, ctx, item)
    last = await uow.session.scalar(select(func.max(DocumentVersion.number))
                                    .where(DocumentVersion.document_id == doc.id)) or 0
    version = DocumentVersion(document_id=doc.id, number=last + 1, blob_key=upload.blob_key,
                              filename=upload.filename, size=upload.size, page_count=info.page_count,
                              page_sizes=info.sizes, note=note.strip()[:500], uploaded_by=actor.id)
    uow.session.add(version)
    await uow.session.flush()
    doc.current_version_id = version.id
    touch(ctx.meeting)
    await audit.record(uow, actor, "meeting.document.version", "meeting", doc.meeting_id, document_id=doc.id,
                       version_id=version.id, number=version.number, sha256=upload.blob_key)
    if ctx.meeting.state != State.DRAFT:
        uow.emit(topics.room(doc.meeting_id), "documents.changed", item_id=doc.item_id, document_id=doc.id,
                 version_id=version.id)
    prerender.after_commit(uow, [version.id])
    return version


# ---------------------------------------------------------------- reading


async def documents_view(uow: UnitOfWork, access: Access, meeting: Meeting) -> list[dict[str, Any]]:
    """Documents the user may see (meeting-level ones and those of visible items), current version first."""
    visible = await visible_item_ids(uow, access, meeting.id)
    docs = (await uow.session.scalars(
        select(Document).where(Document.meeting_id == meeting.id).order_by(Document.item_id, Document.position)
    )).all()
    docs = [d for d in docs if d.item_id is None or d.item_id in visible]
    if not docs:
        return []
    versions = (await uow.session.scalars(
        select(DocumentVersion).where(DocumentVersion.document_id.in_([d.id for d in docs]))
        .order_by(DocumentVersion.number.desc())
    )).all()
    by_doc: dict[int, list[DocumentVersion]] = {}
    for v in versions:
        by_doc.setdefault(v.document_id, []).append(v)
    names = await user_names(uow, {v.uploaded_by for v in versions})
    out = []
    for d in docs:
        vs = by_doc.get(d.id, [])
        out.append({
            "id": d.id, "item_id": d.item_id, "title": d.title, "position": d.position,
            "current_version_id": d.current_version_id,
            "versions": [{**v.public(), "uploaded_by": names[v.uploaded_by].full_name
                          if v.uploaded_by in names else ""} for v in vs],
        })
    return out


async def version_context(uow: UnitOfWork, user: User, version_id: int) -> tuple[Ctx, Document, DocumentVersion]:
    """A version the user may read: they see its meeting and, for an item's document, that item.

    The version, its document, meeting and item in one query (this runs on every annotation, page and
    subscription), then the user's seats and sites; the allowed list only for a confidential item."""
    row = (await uow.session.execute(
        select(DocumentVersion, Document, Meeting, AgendaItem)
        .join(Document, Document.id == DocumentVersion.document_id)
        .join(Meeting, Meeting.id == Document.meeting_id)
        .outerjoin(AgendaItem, AgendaItem.id == Document.item_id)
        .where(DocumentVersion.id == version_id)
    )).first()
    if row is None:
        raise NotFound("Không tìm thấy tài liệu.")
    version, doc, meeting, item = row
    ctx = await view_context_of(uow, user, meeting)
    if doc.item_id is not None:
        if item is not None and not await can_see(uow, ctx.access, item):
            raise Denied("Tài liệu thuộc nội dung mật, bạn không có trong danh sách được xem.",
                         audit=("meeting.document.denied", "meeting", meeting.id,
                                {"item_id": item.id, "document_id": doc.id, "version_id": version.id}))
    return ctx, doc, version


def version_meta(doc: Document, version: DocumentVersion) -> dict[str, Any]:
    return {**version.public(), "title": doc.title, "meeting_id": doc.meeting_id, "item_id": doc.item_id,
            "current_version_id": doc.current_version_id, "page_sizes": version.page_sizes,
            "widths": list(rules.PAGE_WIDTHS)}


# ---------------------------------------------------------------- the page cache

_inflight: dict[tuple[str, int, int, str], asyncio.Future[str]] = {}


# What the cache table holds, remembered per database: a row never changes (the source is content-addressed and
# so is the render), so the room opening an item costs no lookup per tablet once the page is known (#22).
KNOWN_KEEP = 8192
_known: weakref.WeakKeyDictionary[Database, collections.OrderedDict[tuple[str, int, int, str], str]] = \
    weakref.WeakKeyDictionary()


def _know(db: Database, key: tuple[str, int, int, str], blob_key: str) -> None:
    known = _known.setdefault(db, collections.OrderedDict())
    known[key] = blob_key
    while len(known) > KNOWN_KEEP:
        known.popitem(last=False)


async def _cached(db: Database, key: tuple[str, int, int, str]) -> str | None:
    known = _known.get(db)
    if known is not None and (hit := known.get(key)) is not None:
        return hit
    source, page, width, fmt = key
    async with db.uow(readonly=True) as uow:
        found = await uow.session.scalar(select(PageRender.blob_key).where(
            PageRender.source_key == source, PageRender.page == page, PageRender.width == width,
            PageRender.fmt == fmt))
    if found:
        _know(db, key, found)
    return found


async def _remember(db: Database, key: tuple[str, int, int, str], blob_key: str) -> None:
    source, page, width, fmt = key
    async with db.uow() as uow:
        ins = (postgresql.insert if uow.dialect == "postgresql" else sqlite.insert)(PageRender)
        await uow.session.execute(ins.values(source_key=source, page=page, width=width, fmt=fmt, blob_key=blob_key,
                                             created_at=utcnow()).on_conflict_do_nothing())
        await uow.commit()


async def _produce(db: Database, blobs: Blobs, key: tuple[str, int, int, str], make: Any, content_type: str) -> str:
    """The blob key of a derived artefact: from the cache table, else made once (concurrent askers wait)."""
    found = await _cached(db, key)
    if found:
        return found
    pdfpages.check_refused(key[0], key[1])  # a page past the PDF workers' limits is not tried again
    pending = _inflight.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    _inflight[key] = future
    try:
        data = await render.with_doc(key[0], lambda: blobs.read(key[0], limit=READ_LIMIT), make, *key[1:])
        if isinstance(data, dict):
            data = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        info = await blobs.put_bytes(data, content_type=content_type)
        await _remember(db, key, info.key)
        _know(db, key, str(info.key))
        future.set_result(info.key)
        return str(info.key)
    except BaseException as exc:
        if isinstance(exc, pdfsandbox.TooComplex):
            pdfpages.remember_refusal(key[0], key[1], exc)
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
        raise
    finally:
        _inflight.pop(key, None)


SEARCH_PAGE = -1  # where a search past the PDF workers' limits is remembered (pdfpages.check_refused)


def _check_page(version: DocumentVersion, page: int) -> None:
    if not 1 <= page <= version.page_count:
        raise NotFound(f"Tài liệu có {version.page_count} trang; không có trang {page}.")


async def page_image(db: Database, blobs: Blobs, version: DocumentVersion, page: int, width: int,
                     fmt: str = "png") -> tuple[str, str]:
    """(blob key, content type) of page ``page`` at the bucket for ``width``; renders it if needed."""
    _check_page(version, page)
    if fmt not in pdfpages.PAGE_FORMATS:
        raise Invalid(pdfpages.FORMATS_MESSAGE, field="fmt")
    bucket = rules.width_bucket(max(1, width))
    _asked[bucket] += 1  # the widths the tablets of this server ask for are the ones pre-rendered
    _formats[fmt] += 1  # and in the format they ask for most

    key = await _produce(db, blobs, (version.blob_key, page, bucket, fmt), render.render_page,
                         pdfpages.PAGE_FORMATS[fmt])
    return key, pdfpages.PAGE_FORMATS[fmt]


async def page_words(db: Database, blobs: Blobs, version: DocumentVersion, page: int) -> str:
    """Blob key of the page's word boxes (JSON)."""
    _check_page(version, page)

    return await _produce(db, blobs, (version.blob_key, page, 0, "words"), render.words_for_cache,
                          "application/json")


async def search(blobs: Blobs, version: DocumentVersion, query: str) -> dict[str, Any]:
    query = (query or "").strip()
    if not query:
        raise Invalid("Cần nhập từ cần tìm.", field="q")
    if len(query) > 200:
        raise Invalid("Từ cần tìm quá dài.", field="q")
    key = version.blob_key
    pdfpages.check_refused(key, SEARCH_PAGE)
    try:
        return await render.with_doc(key, lambda: blobs.read(key, limit=READ_LIMIT), render.search, query)
    except pdfsandbox.TooComplex as exc:  # searching this file again would hold a worker as long
        pdfpages.remember_refusal(key, SEARCH_PAGE, exc)
        raise


# ---------------------------------------------------------------- pre-rendering (meetings.prerender)

PRERENDER_PAGES = 3  # the first pages of a document, the ones every tablet opens on
PRERENDER_WIDTHS = 2  # at the most asked-for width buckets of this server...
PRERENDER_DEFAULT_WIDTHS = (1600, 800)  # ...or, before any tablet asked, a 10-inch tablet (2x) and a laptop
PRERENDER_QUEUE = 64  # versions waiting; more are dropped (their pages render when asked, as before)
PRERENDER_DEFAULT_FORMAT = "webp"  # what the reader (web/static/js/pdfreader.js) asks for where WebP decodes
_asked: collections.Counter[int] = collections.Counter()
_formats: collections.Counter[str] = collections.Counter()


def prerender_widths() -> list[int]:
    common = [w for w, _ in _asked.most_common(PRERENDER_WIDTHS)]
    return common or list(PRERENDER_DEFAULT_WIDTHS[:PRERENDER_WIDTHS])


def forget_asked() -> None:
    """Forget the widths and formats asked so far (tests start from the defaults)."""
    _asked.clear()
    _formats.clear()


def prerender_format() -> str:
    common = _formats.most_common(1)
    return common[0][0] if common else PRERENDER_DEFAULT_FORMAT


class Prerenderer:
    """The background renderer of ``meetings.prerender``: one version at a time, its first
    ``pages`` pages (``EOFFICE_PRERENDER_PAGES``) at ``prerender_widths()`` in ``prerender_format()``, page 1
    at every width first. A page
    already in the cache costs one lookup; a page a tablet asks for meanwhile is rendered once for
    both (``_produce``'s in-flight futures). Failures (a file past the workers' limits, a missing
    blob) are logged and skipped: the page is then rendered, or refused, when asked, as without."""

    def __init__(self, db: Database, blobs: Blobs, pages: int = PRERENDER_PAGES) -> None:
        self.db, self.blobs, self.pages = db, blobs, pages
        self._queue: collections.deque[int] = collections.deque()
        self._held: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        db.consumers[prerender.CONSUMER] = self.submit

    def submit(self, version_ids: list[int]) -> None:
        for vid in version_ids:
            if vid in self._held or len(self._queue) >= PRERENDER_QUEUE:
                continue
            self._held.add(vid)
            self._queue.append(vid)
            self._idle.clear()
        if self._queue and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="meeting-prerender")

    async def _run(self) -> None:
        try:
            while self._queue:
                vid = self._queue.popleft()
                try:
                    await self.warm(vid)
                except Exception:
                    log.warning("pre-rendering document version %s failed", vid, exc_info=True)
                finally:
                    self._held.discard(vid)
        finally:
            if not self._queue:
                self._idle.set()

    async def warm(self, version_id: int) -> None:
        async with self.db.uow(readonly=True) as uow:
            version = await uow.session.get(DocumentVersion, version_id)
        if version is None:
            return
        widths, fmt = prerender_widths(), prerender_format()
        for page in range(1, min(self.pages, version.page_count) + 1):
            for width in widths:
                key = (version.blob_key, page, width, fmt)
                try:
                    await _produce(self.db, self.blobs, key, render.render_page, pdfpages.PAGE_FORMATS[fmt])
                except pdfsandbox.TooComplex:
                    return  # remembered by _produce; the rest of this file would hold the workers as long

    async def drain(self) -> None:
        """Wait until every submitted version is warmed (tests, benchmarks)."""
        await self._idle.wait()

    async def stop(self) -> None:
        if self.db.consumers.get(prerender.CONSUMER) == self.submit:
            del self.db.consumers[prerender.CONSUMER]
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
