"""Annotations on meeting documents: highlights, ink, notes, rectangles and arrows, private by default.

One row per annotation, tied to a document *version* and a page; coordinates are PDF points with
the origin at the top left of the page as PyMuPDF shows it (the same space as the word boxes of
``meetings.render.page_words``), so they do not depend on the screen, zoom or rendering width.

Visibility:

- ``private`` (the default): the owner only. Never listed, exported, snapshotted or sent as an
  event to anyone else; events go to ``annot:u:{owner}`` (the owner's other devices) only.
- ``meeting``: everyone who may read the document; events on ``annot:v:{version_id}``, a topic
  whose authoriser admits exactly the people who may read that version (confidential items
  included). Never on the room topic ``meeting:{id}``, which every participant receives.
- ``people``: the owner and chosen recipients who may read the document; one event per person on
  their own ``annot:u:{id}`` topic. Recipients who lost access to the document are left out.

When an annotation's audience shrinks (shared -> private, a recipient removed) the people who
lose it get ``annotation.hidden`` with ids only; a deletion sends ``annotation.deleted`` (ids
only) to the audience it had.

Concurrency: every update and deletion carries the revision it was made on; a stale one raises
``Conflict`` with the current state (``current``), and the client shows it. A create carries a
client id (the tablet makes it, also offline), so a create replayed from the offline queue after
a lost answer returns the same row instead of a duplicate.

Audit: the log records when an annotation becomes visible to others, changes audience, or a
shared one changes or is deleted (ids, kind, page, visibility and recipients; never its text or
shape). A private annotation's life is a person's own reading notes, like the presenter's page
turns, and is not written to the audit log, which administrators read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, exists, func, or_, select

from eoffice import audit
from eoffice.live_registry import TopicRegistry
from eoffice.org import User
from meetings.agenda import can_see
from meetings.documents import version_context
from meetings.meetings import access_of, user_names
from meetings.rules import State
from meetings.schema import AgendaItem, Annotation, AnnotationRecipient, Document, DocumentVersion, Meeting, Participant
from storage.db import UnitOfWork, utcnow
from storage.errors import AppError, Conflict, Forbidden, Invalid, NotFound

# ---------------------------------------------------------------- rules without I/O

KINDS = ("highlight", "ink", "note", "rect", "arrow")
KIND_LABELS = {"highlight": "Tô sáng", "ink": "Nét vẽ", "note": "Ghi chú", "rect": "Khung chữ nhật",
               "arrow": "Mũi tên"}
VISIBILITIES = ("private", "meeting", "people")
VISIBILITY_LABELS = {"private": "Riêng tôi", "meeting": "Chia sẻ với cuộc họp", "people": "Chia sẻ với người chọn"}
DEFAULT_COLORS = {"highlight": "#ffd400", "ink": "#d32f2f", "note": "#f5a623", "rect": "#1565c0",
                  "arrow": "#d32f2f"}

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
TOLERANCE = 1.0  # points outside the page still accepted (a stroke that slips off the edge), then clamped
MAX_RECTS = 300  # highlight rectangles (one per word or line)
MAX_STROKES = 100
MAX_STROKE_POINTS = 2000
MAX_POINTS = 10000  # all strokes of one ink annotation
MAX_TEXT = 4000
MAX_QUOTE = 2000
MAX_RECIPIENTS = 100
MAX_PER_VERSION = 3000  # annotations of one person on one document version
WIDTH_RANGE = (0.25, 24.0)

LOCKED_STATES = {State.ARCHIVED, State.CANCELLED}


def _num(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("Tọa độ phải là số.", field=field)
    f = float(value)
    if not math.isfinite(f):
        raise Invalid("Tọa độ không hợp lệ.", field=field)
    return f


def _coord(value: Any, limit: float, field: str) -> float:
    f = _num(value, field)
    if f < -TOLERANCE or f > limit + TOLERANCE:
        raise Invalid("Chú thích nằm ngoài trang tài liệu.", field=field)
    return round(min(max(f, 0.0), limit), 2)


def _point(value: Any, w: float, h: float, field: str) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise Invalid("Điểm phải gồm hai tọa độ [x, y].", field=field)
    return [_coord(value[0], w, field), _coord(value[1], h, field)]


def _rect(value: Any, w: float, h: float, field: str) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise Invalid("Hình chữ nhật phải gồm bốn tọa độ [x0, y0, x1, y1].", field=field)
    x0, x1 = sorted((_coord(value[0], w, field), _coord(value[2], w, field)))
    y0, y1 = sorted((_coord(value[1], h, field), _coord(value[3], h, field)))
    if x1 - x0 < 0.5 or y1 - y0 < 0.5:
        raise Invalid("Hình chữ nhật quá nhỏ.", field=field)
    return [x0, y0, x1, y1]


def _width(shape: dict[str, Any], default: float) -> float:
    w = _num(shape.get("width", default), "shape.width")
    if not WIDTH_RANGE[0] <= w <= WIDTH_RANGE[1]:
        raise Invalid("Độ dày nét không hợp lệ.", field="shape.width")
    return round(w, 2)


def validate_color(color: Any, kind: str) -> str:
    if color in (None, ""):
        return DEFAULT_COLORS[kind]
    if not isinstance(color, str) or not COLOR_RE.match(color):
        raise Invalid("Màu phải có dạng #rrggbb.", field="color")
    return color.lower()


def validate_shape(kind: Any, shape: Any, page_w: float, page_h: float) -> dict[str, Any]:
    """The shape, checked and normalised (rounded to 0.01 pt, rectangles ordered, inside the page)."""
    if kind not in KINDS:
        raise Invalid("Loại chú thích không hợp lệ.", field="kind")
    if not isinstance(shape, dict):
        raise Invalid("Hình dạng chú thích phải là một đối tượng JSON.", field="shape")
    w, h = float(page_w), float(page_h)
    if kind == "highlight":
        rects = shape.get("rects")
        if not isinstance(rects, list) or not rects:
            raise Invalid("Tô sáng cần ít nhất một vùng chữ.", field="shape.rects")
        if len(rects) > MAX_RECTS:
            raise Invalid(f"Tô sáng tối đa {MAX_RECTS} vùng chữ.", field="shape.rects")
        quote = shape.get("quote", "")
        if not isinstance(quote, str):
            raise Invalid("Đoạn chữ được tô sáng không hợp lệ.", field="shape.quote")
        return {"rects": [_rect(r, w, h, "shape.rects") for r in rects], "quote": quote.strip()[:MAX_QUOTE]}
    if kind == "ink":
        strokes = shape.get("strokes")
        if not isinstance(strokes, list) or not strokes:
            raise Invalid("Nét vẽ cần ít nhất một nét.", field="shape.strokes")
        if len(strokes) > MAX_STROKES:
            raise Invalid(f"Một nét vẽ tối đa {MAX_STROKES} nét.", field="shape.strokes")
        total = 0
        out = []
        for stroke in strokes:
            if not isinstance(stroke, list) or not stroke:
                raise Invalid("Nét vẽ rỗng.", field="shape.strokes")
            if len(stroke) > MAX_STROKE_POINTS:
                raise Invalid(f"Mỗi nét tối đa {MAX_STROKE_POINTS} điểm.", field="shape.strokes")
            total += len(stroke)
            if total > MAX_POINTS:
                raise Invalid(f"Nét vẽ tối đa {MAX_POINTS} điểm.", field="shape.strokes")
            points = []
            for p in stroke:
                if not isinstance(p, list | tuple) or len(p) not in (2, 3):
                    raise Invalid("Mỗi điểm gồm [x, y] hoặc [x, y, lực nhấn].", field="shape.strokes")
                xy = _point(p[:2], w, h, "shape.strokes")
                if len(p) == 3:
                    pressure = _num(p[2], "shape.strokes")
                    xy.append(round(min(max(pressure, 0.0), 1.0), 3))
                points.append(xy)
            out.append(points)
        return {"strokes": out, "width": _width(shape, 2.0)}
    if kind == "note":
        return {"at": _point(shape.get("at"), w, h, "shape.at")}
    if kind == "rect":
        return {"rect": _rect(shape.get("rect"), w, h, "shape.rect"), "width": _width(shape, 2.0)}
    start = _point(shape.get("from"), w, h, "shape.from")
    end = _point(shape.get("to"), w, h, "shape.to")
    if math.dist(start, end) < 1:
        raise Invalid("Mũi tên quá ngắn.", field="shape.to")
    return {"from": start, "to": end, "width": _width(shape, 2.0)}


def bounds(kind: str, shape: dict[str, Any]) -> list[float]:
    """The annotation's bounding box [x0, y0, x1, y1] in points (for the side list's jump)."""
    if kind == "highlight":
        rs = shape["rects"]
        return [min(r[0] for r in rs), min(r[1] for r in rs), max(r[2] for r in rs), max(r[3] for r in rs)]
    if kind == "ink":
        pts = [p for s in shape["strokes"] for p in s]
        return [min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)]
    if kind == "note":
        x, y = shape["at"]
        return [x, y, x, y]
    if kind == "rect":
        return list(shape["rect"])
    (x0, y0), (x1, y1) = shape["from"], shape["to"]
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def clean_text(text: Any) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise Invalid("Nội dung ghi chú phải là chữ.", field="text")
    text = text.replace("\r\n", "\n").replace("\x00", "").strip()
    if len(text) > MAX_TEXT:
        raise Invalid(f"Ghi chú tối đa {MAX_TEXT} ký tự.", field="text")
    return text


def clean_visibility(visibility: Any) -> str:
    if visibility in (None, ""):
        return "private"
    if visibility not in VISIBILITIES:
        raise Invalid("Chế độ chia sẻ không hợp lệ.", field="visibility")
    return str(visibility)


def clean_recipients(ids: Any, owner_id: int) -> set[int]:
    if ids in (None, ""):
        return set()
    if not isinstance(ids, list | tuple | set):
        raise Invalid("Danh sách người được chia sẻ không hợp lệ.", field="recipient_ids")
    out = set()
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise Invalid("Danh sách người được chia sẻ không hợp lệ.", field="recipient_ids")
        if i != owner_id:
            out.add(i)
    if len(out) > MAX_RECIPIENTS:
        raise Invalid(f"Chia sẻ tối đa với {MAX_RECIPIENTS} người.", field="recipient_ids")
    return out


# ---------------------------------------------------------------- topics

TOPIC_PREFIX = "annot:"
_TOPIC = re.compile(r"^annot:(v|u):(\d+)$")


def version_topic(version_id: int) -> str:
    """Annotations shared with the meeting, on one document version."""
    return f"annot:v:{version_id}"


def user_topic(user_id: int) -> str:
    """One person's own annotations (their other devices) and those shared with them by name."""
    return f"annot:u:{user_id}"


def parse_topic(topic: str) -> tuple[str, int] | None:
    m = _TOPIC.match(topic)
    return (m.group(1), int(m.group(2))) if m else None


# ---------------------------------------------------------------- model


def public(a: Annotation, owner_name: str, recipients: Iterable[int] | None = None) -> dict[str, Any]:
    """What a viewer gets. ``recipients`` only for the owner (others do not learn who else was chosen)."""
    out: dict[str, Any] = {
        "id": a.id, "client_id": a.client_id, "meeting_id": a.meeting_id, "document_id": a.document_id,
        "version_id": a.version_id, "page": a.page, "kind": a.kind, "shape": a.shape, "color": a.color,
        "text": a.text, "visibility": a.visibility, "owner_id": a.owner_id, "owner_name": owner_name,
        "revision": a.revision, "bounds": bounds(a.kind, a.shape), "created_at": a.created_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
    }
    if recipients is not None:
        out["recipient_ids"] = sorted(recipients)
    return out


# ---------------------------------------------------------------- who may read what


async def may_read(uow: UnitOfWork, user: User, doc: Document) -> bool:
    """Whether ``user`` may read ``doc`` now (the meeting, and the item when it is confidential)."""
    if not user.active:
        return False
    meeting = await uow.session.get(Meeting, doc.meeting_id)
    if meeting is None:
        return False
    access = await access_of(uow, user, meeting)
    if not access.can_view:
        return False
    if doc.item_id is None:
        return True
    item = await uow.session.get(AgendaItem, doc.item_id)
    return item is not None and await can_see(uow, access, item)


async def readers_among(uow: UnitOfWork, doc: Document, user_ids: Iterable[int]) -> set[int]:
    ids = sorted(set(user_ids))
    if not ids:
        return set()
    users = (await uow.session.scalars(select(User).where(User.id.in_(ids)))).all()
    return {u.id for u in users if await may_read(uow, u, doc)}


async def recipients_of(uow: UnitOfWork, annotation_ids: Iterable[int]) -> dict[int, set[int]]:
    ids = list(annotation_ids)
    out: dict[int, set[int]] = {i: set() for i in ids}
    if ids:
        rows = await uow.session.execute(select(AnnotationRecipient.annotation_id, AnnotationRecipient.user_id)
                                         .where(AnnotationRecipient.annotation_id.in_(ids)))
        for aid, uid in rows.all():
            out[aid].add(uid)
    return out


async def _recipients(uow: UnitOfWork, a: Annotation) -> set[int]:
    """Whom ``a`` is shared with by name: only a ``people`` annotation has recipient rows (a change of
    visibility replaces them), so the others need no query."""
    return (await recipients_of(uow, [a.id]))[a.id] if a.visibility == "people" else set()


def visible_to(user_id: int) -> Any:
    """SQL condition: annotations ``user_id`` may see (their own, shared with the meeting, or with them)."""
    named = exists().where(AnnotationRecipient.annotation_id == Annotation.id,
                           AnnotationRecipient.user_id == user_id)
    return or_(Annotation.owner_id == user_id, Annotation.visibility == "meeting",
               (Annotation.visibility == "people") & named)


# ---------------------------------------------------------------- events


async def _audience(uow: UnitOfWork, a: Annotation, doc: Document, recipients: set[int]) -> dict[str, str]:
    """topic -> "owner" | "other": where this annotation's state may go right now."""
    topics = {user_topic(a.owner_id): "owner"}
    if a.visibility == "meeting":
        topics[version_topic(a.version_id)] = "other"
    elif a.visibility == "people":
        for uid in sorted(await readers_among(uow, doc, recipients)):
            topics[user_topic(uid)] = "other"
    return topics


def _emit_saved(uow: UnitOfWork, a: Annotation, owner_name: str, recipients: set[int],
                audience: dict[str, str], before: dict[str, str] | None = None) -> None:
    for topic, who in audience.items():
        data = public(a, owner_name, recipients if who == "owner" else None)
        uow.emit(topic, "annotation.saved", annotation=data)
    for topic in sorted(set(before or {}) - set(audience)):
        uow.emit(topic, "annotation.hidden", id=a.id, version_id=a.version_id, revision=a.revision)


def _audit_data(a: Annotation, recipients: set[int]) -> dict[str, Any]:
    return {"annotation_id": a.id, "version_id": a.version_id, "page": a.page, "kind": a.kind,
            "visibility": a.visibility, "recipient_ids": sorted(recipients) if a.visibility == "people" else []}


# ---------------------------------------------------------------- services


async def _doc_for_write(uow: UnitOfWork, actor: User, version_id: int,
                         meeting_id: int | None = None) -> tuple[Meeting, Document, DocumentVersion]:
    ctx, doc, version = await version_context(uow, actor, int(version_id))
    if meeting_id is not None and doc.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy tài liệu.")
    _refuse_locked(ctx.meeting)
    return ctx.meeting, doc, version


def _refuse_locked(meeting: Meeting) -> None:
    """No annotation changes once a meeting is archived or cancelled."""
    if State(meeting.state) in LOCKED_STATES:
        raise Conflict("Cuộc họp đã lưu trữ hoặc đã hủy: không thêm, sửa chú thích được nữa.", state=meeting.state)


def _page_size(version: DocumentVersion, page: Any) -> tuple[int, float, float]:
    if isinstance(page, bool) or not isinstance(page, int):
        raise Invalid("Số trang không hợp lệ.", field="page")
    if not 1 <= page <= version.page_count:
        raise Invalid(f"Tài liệu có {version.page_count} trang; không có trang {page}.", field="page")
    w, h = version.page_sizes[page - 1]
    return page, float(w), float(h)


async def _check_recipients(uow: UnitOfWork, doc: Document, visibility: str, recipients: set[int]) -> set[int]:
    if visibility != "people":
        return set()
    if not recipients:
        raise Invalid("Chọn ít nhất một người để chia sẻ.", field="recipient_ids")
    readers = await readers_among(uow, doc, recipients)
    if readers != recipients:
        raise Invalid("Có người được chọn không tham dự cuộc họp hoặc không được xem tài liệu này.",
                      field="recipient_ids", user_ids=sorted(recipients - readers))
    return recipients


async def create(uow: UnitOfWork, actor: User, version_id: int, *, client_id: Any, page: Any, kind: Any,
                 shape: Any, color: Any = None, text: Any = "", visibility: Any = "private",
                 recipient_ids: Any = None, meeting_id: int | None = None) -> tuple[Annotation, bool]:
    """Add an annotation; returns (row, created). A replayed ``client_id`` returns the existing row.
    ``meeting_id``: refuse (404) a version of another meeting (the URL's meeting)."""
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        raise Invalid("Mã chú thích phía máy tính bảng không hợp lệ.", field="client_id")
    meeting, doc, version = await _doc_for_write(uow, actor, version_id, meeting_id)
    # one query: a replay of this client id (any version), and how many the actor has on this version
    count, existing_id = (await uow.session.execute(
        select(func.count(Annotation.id).filter(Annotation.version_id == version.id),
               func.max(Annotation.id).filter(Annotation.client_id == client_id))
        .where(Annotation.owner_id == actor.id,
               or_(Annotation.version_id == version.id, Annotation.client_id == client_id)))).one()
    if existing_id is not None:
        existing = await uow.session.get(Annotation, existing_id)
        assert existing is not None
        if existing.version_id != version.id:
            raise Conflict("Mã chú thích đã được dùng cho tài liệu khác.", field="client_id")
        return existing, False
    page, w, h = _page_size(version, page)
    shape = validate_shape(kind, shape, w, h)
    visibility = clean_visibility(visibility)
    recipients = await _check_recipients(uow, doc, visibility, clean_recipients(recipient_ids, actor.id))
    if (count or 0) >= MAX_PER_VERSION:
        raise Invalid(f"Mỗi người tối đa {MAX_PER_VERSION} chú thích trên một tài liệu.")
    now = utcnow()
    a = Annotation(client_id=client_id, meeting_id=meeting.id, document_id=doc.id, version_id=version.id, page=page,
                   owner_id=actor.id, kind=str(kind), shape=shape, color=validate_color(color, str(kind)),
                   text=clean_text(text), visibility=visibility, revision=1, created_at=now, updated_at=now)
    uow.session.add(a)
    await uow.session.flush()
    for uid in sorted(recipients):
        uow.session.add(AnnotationRecipient(annotation_id=a.id, user_id=uid))
    if visibility != "private":
        await audit.record(uow, actor, "meeting.annotation.share", "meeting", meeting.id, **_audit_data(a, recipients))
    _emit_saved(uow, a, actor.full_name, recipients, await _audience(uow, a, doc, recipients))
    a.recipients = recipients  # type: ignore[attr-defined]  # for the caller's answer: no second query
    return a, True


async def _own(uow: UnitOfWork, actor: User, annotation_id: int,
               meeting_id: int | None = None) -> tuple[Annotation, Meeting, Document, DocumentVersion]:
    """The actor's annotation, locked. Someone else's is "not found" (their private ones do not exist), as is
    one of another meeting than ``meeting_id`` (the URL's)."""
    a = await uow.session.scalar(select(Annotation).where(Annotation.id == int(annotation_id)).with_for_update())
    if a is not None and meeting_id is not None and a.meeting_id != meeting_id:
        raise NotFound("Không tìm thấy chú thích.")
    if a is None or a.owner_id != actor.id:
        if a is not None and await _sees(uow, actor, a):
            raise Forbidden("Chỉ người tạo chú thích được sửa hoặc xóa chú thích đó.")
        raise NotFound("Không tìm thấy chú thích.")
    meeting, doc, version = await _doc_for_write(uow, actor, a.version_id)
    return a, meeting, doc, version


async def _sees(uow: UnitOfWork, user: User, a: Annotation) -> bool:
    if a.owner_id == user.id or a.visibility == "meeting":
        visible = True
    elif a.visibility == "people":
        visible = user.id in (await recipients_of(uow, [a.id]))[a.id]
    else:
        visible = False
    if not visible:
        return False
    doc = await uow.session.get(Document, a.document_id)
    return doc is not None and await may_read(uow, user, doc)


def _stale(a: Annotation, revision: Any, recipients: set[int], owner_name: str) -> None:
    if isinstance(revision, bool) or not isinstance(revision, int):
        raise Invalid("Thiếu số phiên bản (revision) của chú thích.", field="revision")
    if revision != a.revision:
        raise Conflict("Chú thích đã được sửa ở nơi khác (trên thiết bị khác của bạn). Đây là bản mới nhất.",
                       current=public(a, owner_name, recipients), revision=a.revision)


EDITABLE = {"shape", "color", "text", "visibility", "recipient_ids", "page"}


async def update(uow: UnitOfWork, actor: User, annotation_id: int, *, revision: Any, meeting_id: int | None = None,
                 **changes: Any) -> Annotation:
    """Change an annotation made on ``revision``; a stale revision raises Conflict with the current state."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise Invalid(f"Không sửa được trường: {', '.join(sorted(unknown))}.")
    a, meeting, doc, version = await _own(uow, actor, annotation_id, meeting_id)
    recipients_before = await _recipients(uow, a)
    _stale(a, revision, recipients_before, actor.full_name)
    before_audience = await _audience(uow, a, doc, recipients_before)
    was_shared = a.visibility != "private"
    page, w, h = _page_size(version, changes.get("page", a.page))
    if "shape" in changes or "page" in changes:
        a.shape = validate_shape(a.kind, changes.get("shape", a.shape), w, h)
        a.page = page
    if "color" in changes:
        a.color = validate_color(changes["color"], a.kind)
    if "text" in changes:
        a.text = clean_text(changes["text"])
    visibility = clean_visibility(changes.get("visibility", a.visibility))
    if "recipient_ids" in changes or visibility != a.visibility:
        wanted = clean_recipients(changes.get("recipient_ids", sorted(recipients_before)), actor.id)
        recipients = await _check_recipients(uow, doc, visibility, wanted)
    else:
        recipients = recipients_before if visibility == "people" else set()
    a.visibility = visibility
    if recipients != recipients_before:
        await uow.session.execute(delete(AnnotationRecipient).where(AnnotationRecipient.annotation_id == a.id))
        for uid in sorted(recipients):
            uow.session.add(AnnotationRecipient(annotation_id=a.id, user_id=uid))
    a.revision += 1
    a.updated_at = utcnow()
    await uow.session.flush()
    if was_shared or a.visibility != "private":
        action = "meeting.annotation.share" if not was_shared else (
            "meeting.annotation.unshare" if a.visibility == "private" else "meeting.annotation.update")
        await audit.record(uow, actor, action, "meeting", meeting.id, **_audit_data(a, recipients))
    _emit_saved(uow, a, actor.full_name, recipients, await _audience(uow, a, doc, recipients), before_audience)
    a.recipients = recipients  # type: ignore[attr-defined]  # for the caller's answer: no second query
    return a


async def remove(uow: UnitOfWork, actor: User, annotation_id: int, *, revision: Any,
                 meeting_id: int | None = None) -> Annotation:
    """Delete (erase) an annotation made on ``revision``."""
    a, meeting, doc, _version = await _own(uow, actor, annotation_id, meeting_id)
    recipients = await _recipients(uow, a)
    _stale(a, revision, recipients, actor.full_name)
    audience = await _audience(uow, a, doc, recipients)
    if a.visibility != "private":
        await audit.record(uow, actor, "meeting.annotation.delete", "meeting", meeting.id, **_audit_data(a, recipients))
    for topic in audience:
        uow.emit(topic, "annotation.deleted", id=a.id, version_id=a.version_id, revision=a.revision + 1)
    await uow.session.delete(a)
    await uow.session.flush()
    return a


async def withdraw(uow: UnitOfWork, actor: User, annotation_id: int, *, meeting_id: int) -> Annotation:
    """The chair or secretary takes someone else's mark off the shared page (issue 22): it goes back to its
    owner as private (nothing is deleted), the others' tablets drop it at once, the audit names the owner."""
    a = await uow.session.scalar(select(Annotation).where(Annotation.id == int(annotation_id)).with_for_update())
    if a is None or a.meeting_id != meeting_id or not await _sees(uow, actor, a):
        raise NotFound("Không tìm thấy chú thích.")
    ctx, doc, _version = await version_context(uow, actor, a.version_id)
    if not ctx.access.controller:
        raise Forbidden("Chỉ chủ tọa hoặc thư ký được ẩn ghi chú của người khác.")
    _refuse_locked(ctx.meeting)
    if a.owner_id == actor.id:
        raise Invalid("Ghi chú của chính bạn: đổi chế độ chia sẻ thành «Riêng tôi».")
    if a.visibility == "private":
        raise Conflict("Ghi chú này đã không còn được chia sẻ.")
    recipients = await _recipients(uow, a)
    before = await _audience(uow, a, doc, recipients)
    a.visibility = "private"
    await uow.session.execute(delete(AnnotationRecipient).where(AnnotationRecipient.annotation_id == a.id))
    a.revision += 1
    a.updated_at = utcnow()
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.annotation.withdraw", "meeting", ctx.meeting.id,
                       owner_id=a.owner_id, **_audit_data(a, recipients))
    owner = (await user_names(uow, {a.owner_id})).get(a.owner_id)
    owner_name = owner.full_name if owner else ""
    _emit_saved(uow, a, owner_name, set(), await _audience(uow, a, doc, set()), before)
    uow.emit(user_topic(a.owner_id), "annotation.withdrawn", id=a.id, version_id=a.version_id,
             by=actor.full_name)
    return a


async def visible(uow: UnitOfWork, user: User, version_id: int, *, scope: str = "all") -> list[dict[str, Any]]:
    """The annotations of a version ``user`` may see: scope all | mine | shared (shared with me or the meeting)."""
    _ctx, _doc, version = await version_context(uow, user, int(version_id))
    return await visible_rows(uow, user, version.id, scope)


async def visible_rows(uow: UnitOfWork, user: User, version_id: int, scope: str = "all") -> list[dict[str, Any]]:
    q = select(Annotation).where(Annotation.version_id == version_id, visible_to(user.id))
    if scope == "mine":
        q = q.where(Annotation.owner_id == user.id)
    elif scope == "shared":
        q = q.where(Annotation.visibility != "private")
    elif scope != "all":
        raise Invalid("Bộ lọc chỉ nhận all, mine hoặc shared.", field="scope")
    rows = (await uow.session.scalars(q.order_by(Annotation.page, Annotation.id))).all()
    names = await user_names(uow, {a.owner_id for a in rows})
    mine = [a.id for a in rows if a.owner_id == user.id]
    recipients = await recipients_of(uow, mine)
    return [public(a, names[a.owner_id].full_name if a.owner_id in names else "",
                   recipients[a.id] if a.owner_id == user.id else None) for a in rows]


async def share_candidates(uow: UnitOfWork, user: User, version_id: int) -> list[dict[str, Any]]:
    """People one may share an annotation of this version with: those who may read it, oneself excepted."""
    ctx, doc, _version = await version_context(uow, user, int(version_id))
    m = ctx.meeting
    ids = {m.chair_id, m.secretary_id, m.created_by}
    for uid, sub in (await uow.session.execute(select(Participant.user_id, Participant.substitute_id)
                                               .where(Participant.meeting_id == m.id))).all():
        ids.update((uid, sub))
    known: set[int] = {i for i in ids if i is not None and i != user.id}
    readers = await readers_among(uow, doc, known)
    names = await user_names(uow, set(readers))
    return sorted(({"id": i, "full_name": names[i].full_name, "title": names[i].title} for i in readers),
                  key=lambda p: p["full_name"])


# ---------------------------------------------------------------- WebSocket hub


async def authorize(uow: UnitOfWork, user: User, topic: str) -> bool:
    parsed = parse_topic(topic)
    if parsed is None:
        return False
    kind, ident = parsed
    if kind == "u":
        return ident == user.id
    try:
        await version_context(uow, user, ident)
    except AppError:
        return False
    return True


async def snapshot(uow: UnitOfWork, user: User, topic: str) -> dict[str, Any]:
    """A client too far behind: the shared annotations of the version (never anyone's private ones);
    for a personal topic, ``{}`` (reload through the API)."""
    parsed = parse_topic(topic)
    if parsed is None or parsed[0] != "v":
        return {}
    _ctx, _doc, version = await version_context(uow, user, parsed[1])
    rows = await visible_rows(uow, user, version.id, "shared")
    return {"version_id": version.id, "annotations": [r for r in rows if r["visibility"] == "meeting"]}


async def replay_filter(uow: UnitOfWork, user: User, topic: str,
                        messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the log replays to ``user``: an annotation they may not see *now* (made private again, shared
    with others, its document moved to a confidential item, deleted) is replayed as ``annotation.hidden``."""
    out = []
    for m in messages:
        if m["type"] == "annotation.saved":
            data = (m.get("data") or {}).get("annotation") or {}
            a = await uow.session.get(Annotation, data.get("id")) if isinstance(data.get("id"), int) else None
            if a is None or not await _sees(uow, user, a):
                m = {**m, "type": "annotation.hidden",
                     "data": {"id": data.get("id"), "version_id": data.get("version_id"),
                              "revision": data.get("revision")}}
        out.append(m)
    return out


def register(hub: TopicRegistry) -> None:
    """Wire the annotation topics into the WebSocket hub (idempotent)."""
    hub.add_authorizer(TOPIC_PREFIX, authorize)
    hub.add_snapshot(TOPIC_PREFIX, snapshot)
    hub.add_replay_filter(TOPIC_PREFIX, replay_filter)
