"""Annotations on agenda PDFs: shapes checked on the server, private by default, shared with the meeting or
with chosen people, revisions and conflicts, events only to the people allowed, and "my annotated copy"
read back with PyMuPDF (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pymupdf
import pytest
from sqlalchemy import select

from eoffice.audit import AuditEntry
from meetings import annotation_export, annotations, documents, lifecycle, render, schema
from meetings.annotations import validate_shape
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from tests.meetings.conftest import World, call, run

NOTE_VI = "Đề nghị Ủy ban nhân dân huyện Đông Triều bổ sung số liệu quý IV; ưu tiên xã Bình Khê."
SECRET = "Ý kiến riêng: phương án này chưa ổn, cần hỏi lại Sở Tài chính"


# ------------------------------------------------------------------------------ rules (no database)


def test_shapes_are_checked_and_normalised() -> None:
    assert validate_shape("highlight", {"rects": [[50, 30, 10, 20]], "quote": " Đông Triều "}, 595, 842) == {
        "rects": [[10.0, 20.0, 50.0, 30.0]], "quote": "Đông Triều"}
    ink = validate_shape("ink", {"strokes": [[[1.234567, 2, 0.5], [595.4, 842.9]]], "width": 3}, 595, 842)
    assert ink == {"strokes": [[[1.23, 2.0, 0.5], [595.0, 842.0]]], "width": 3.0}  # slipped off the edge: clamped
    assert validate_shape("note", {"at": [10, 10]}, 595, 842) == {"at": [10.0, 10.0]}
    assert validate_shape("arrow", {"from": [10, 10], "to": [100, 50]}, 595, 842)["width"] == 2.0
    bad: list[tuple[str, Any]] = [
        ("circle", {}),
        ("note", {"at": [10, 900]}),  # below the page
        ("note", {"at": [float("nan"), 1]}),
        ("note", {"at": ["1", 1]}),
        ("note", {"at": [True, 1]}),
        ("rect", {"rect": [1, 1, 1.2, 50]}),  # too thin
        ("rect", {"rect": [1, 1, 50, 50], "width": 100}),
        ("highlight", {"rects": []}),
        ("highlight", {"rects": [[0, 0, 10, 10]] * (annotations.MAX_RECTS + 1)}),
        ("ink", {"strokes": [[[1, 1]] * (annotations.MAX_STROKE_POINTS + 1)]}),
        ("ink", {"strokes": [[[1, 1]] * 1000] * 11}),  # more than MAX_POINTS in all
        ("ink", {"strokes": [[[1, 1, 0.5, 9]]]}),
        ("arrow", {"from": [10, 10], "to": [10.2, 10]}),
        ("note", "not an object"),
    ]
    for kind, shape in bad:
        with pytest.raises(Invalid):
            validate_shape(kind, shape, 595, 842)
    assert annotations.validate_color(None, "highlight") == "#ffd400"
    assert annotations.validate_color("#A1B2C3", "ink") == "#a1b2c3"
    for colour in ("red", "#fff", "#12345g", "url(javascript:alert(1))", 12):
        with pytest.raises(Invalid):
            annotations.validate_color(colour, "ink")
    assert annotations.clean_recipients([3, 4, 3, 1], owner_id=1) == {3, 4}
    with pytest.raises(Invalid):
        annotations.clean_recipients(["3"], owner_id=1)
    assert annotations.parse_topic("annot:v:12") == ("v", 12) and annotations.parse_topic("annot:x:1") is None


# ------------------------------------------------------------------------------ services


async def _doc(world: World, m: dict[str, Any], item: int | None = 0, pages: int = 2) -> schema.DocumentVersion:
    content = [[f"Trang {n}: Báo cáo chuyển đổi số của Ủy ban nhân dân huyện Đông Triều năm 2026."]
               for n in range(1, pages + 1)]
    upload = await world.upload_pdf(world.organiser, content, "Báo cáo chuyển đổi số")
    _, version = await call(world.db, documents.add_document, world.organiser, world.blobs, m["meeting_id"],
                            upload_id=upload, item_id=m["item_ids"][item] if item is not None else None)
    return version


def _cid(n: int | str) -> str:
    return f"tablet-{n}-0123456789"


async def _create(world: World, who: str, version_id: int, n: int | str, **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    kw.setdefault("page", 1)
    kw.setdefault("kind", "note")
    kw.setdefault("shape", {"at": [100, 120]})
    (a, _created), evs = await run(world.db, annotations.create, world.users[who], version_id, client_id=_cid(n), **kw)
    return a, evs


async def _list(world: World, who: str, version_id: int, scope: str = "all") -> list[dict[str, Any]]:
    async with world.db.uow() as uow:
        return await annotations.visible(uow, world.users[who], version_id, scope=scope)


def _topics(evs: list[dict[str, Any]]) -> set[str]:
    return {e["topic"] for e in evs}


async def test_private_by_default_shared_with_the_meeting_or_with_chosen_people(world: World) -> None:
    m = await world.meeting(start=True)
    v = await _doc(world, m)
    member, member2, chair = world.member, world.member2, world.chair

    # private (the default): only the owner lists it; its one event goes to the owner's own topic
    mine, evs = await _create(world, "member", v.id, 1, text=SECRET)
    assert mine.visibility == "private" and mine.revision == 1
    assert _topics(evs) == {annotations.user_topic(member.id)}
    assert [a["text"] for a in await _list(world, "member", v.id)] == [SECRET]
    for other in ("member2", "chair", "secretary", "organiser"):
        assert await _list(world, other, v.id) == []

    # shared with the meeting: everyone who may read the document, on the version's topic (not the room's)
    shared, evs = await _create(world, "member", v.id, 2, kind="highlight", visibility="meeting",
                                shape={"rects": [[50, 50, 200, 64]], "quote": "Đông Triều"})
    assert _topics(evs) == {annotations.version_topic(v.id), annotations.user_topic(member.id)}
    assert not any(e["topic"].startswith("meeting:") for e in evs)
    for other in ("member2", "chair", "secretary"):
        rows = await _list(world, other, v.id)
        assert [r["id"] for r in rows] == [shared.id] and "recipient_ids" not in rows[0]
        assert rows[0]["owner_name"] == member.full_name
    assert {r["id"] for r in await _list(world, "member", v.id, "mine")} == {mine.id, shared.id}
    assert [r["id"] for r in await _list(world, "member2", v.id, "shared")] == [shared.id]
    assert await _list(world, "member2", v.id, "mine") == []

    # shared with chosen people: one event per recipient, on their own topic; nobody else sees it
    named, evs = await _create(world, "member", v.id, 3, kind="rect", shape={"rect": [10, 10, 90, 60]},
                               visibility="people", recipient_ids=[member2.id])
    assert _topics(evs) == {annotations.user_topic(member.id), annotations.user_topic(member2.id)}
    by_topic = {e["topic"]: e["data"]["annotation"] for e in evs}
    assert by_topic[annotations.user_topic(member.id)]["recipient_ids"] == [member2.id]
    assert "recipient_ids" not in by_topic[annotations.user_topic(member2.id)]
    assert named.id in {r["id"] for r in await _list(world, "member2", v.id)}
    assert named.id not in {r["id"] for r in await _list(world, "chair", v.id)}
    # the audit log says who shared what with whom, never the text or the shape
    async with world.db.uow() as uow:
        entries = (await uow.session.scalars(select(AuditEntry).where(
            AuditEntry.action.like("meeting.annotation.%")))).all()
    assert [e.data["annotation_id"] for e in entries] == [shared.id, named.id]
    assert SECRET not in json.dumps([e.data for e in entries], ensure_ascii=False)

    # someone outside the meeting, or not allowed to read the item, cannot be chosen
    with pytest.raises(Invalid, match="không tham dự"):
        await _create(world, "member", v.id, 4, visibility="people", recipient_ids=[world.outsider.id])
    with pytest.raises(Invalid, match="Chọn ít nhất"):
        await _create(world, "member", v.id, 5, visibility="people", recipient_ids=[])
    with pytest.raises(Invalid):
        await _create(world, "member", v.id, 6, visibility="everyone")
    # nor can an outsider annotate, or list
    with pytest.raises(Forbidden):
        await _create(world, "outsider", v.id, 7)
    with pytest.raises(Forbidden):
        await _list(world, "outsider", v.id)
    assert chair is not None


async def test_revisions_conflicts_and_audience_changes(world: World) -> None:
    m = await world.meeting(start=True)
    v = await _doc(world, m)
    a, _ = await _create(world, "member", v.id, 1, visibility="meeting", text="Ghi chú ban đầu")

    # an update made on the current revision goes through; the old one is stale
    updated, evs = await run(world.db, annotations.update, world.member, a.id, revision=1,
                             text="Sửa trên máy tính bảng")
    assert updated.revision == 2
    assert {e["type"] for e in evs} == {"annotation.saved"}
    with pytest.raises(Conflict) as info:
        await call(world.db, annotations.update, world.member, a.id, revision=1, text="Sửa trên điện thoại")
    assert info.value.details["current"]["text"] == "Sửa trên máy tính bảng"
    assert info.value.details["current"]["revision"] == 2
    with pytest.raises(Conflict):
        await call(world.db, annotations.remove, world.member, a.id, revision=1)
    with pytest.raises(Invalid):
        await call(world.db, annotations.update, world.member, a.id, revision=2, owner_id=world.member2.id)
    with pytest.raises(Invalid):
        await call(world.db, annotations.update, world.member, a.id, revision=2, shape={"at": [9999, 1]})

    # someone else's shared annotation is read only; someone else's private one does not exist for them
    with pytest.raises(Forbidden):
        await call(world.db, annotations.update, world.member2, a.id, revision=2, text="Không phải của tôi")
    private, _ = await _create(world, "member2", v.id, 2)
    with pytest.raises(NotFound):
        await call(world.db, annotations.remove, world.member, private.id, revision=1)

    # back to private: the meeting's topic is told to hide it, with ids only; the owner keeps it
    _, evs = await run(world.db, annotations.update, world.member, a.id, revision=2, visibility="private")
    by_type = {(e["topic"], e["type"]): e["data"] for e in evs}
    assert by_type[(annotations.version_topic(v.id), "annotation.hidden")] == {
        "id": a.id, "version_id": v.id, "revision": 3}
    assert (annotations.user_topic(world.member.id), "annotation.saved") in by_type
    assert a.id not in {r["id"] for r in await _list(world, "chair", v.id)}

    # shared with two people, then with one: the other is told to hide it
    _, evs = await run(world.db, annotations.update, world.member, a.id, revision=3, visibility="people",
                       recipient_ids=[world.member2.id, world.chair.id])
    assert _topics(evs) == {annotations.user_topic(u.id) for u in (world.member, world.member2, world.chair)}
    _, evs = await run(world.db, annotations.update, world.member, a.id, revision=4, recipient_ids=[world.member2.id])
    assert {(e["topic"], e["type"]) for e in evs} == {
        (annotations.user_topic(world.member.id), "annotation.saved"),
        (annotations.user_topic(world.member2.id), "annotation.saved"),
        (annotations.user_topic(world.chair.id), "annotation.hidden")}

    # erase: the audience it had is told, with ids only
    _, evs = await run(world.db, annotations.remove, world.member, a.id, revision=5)
    assert {(e["topic"], e["type"]) for e in evs} == {
        (annotations.user_topic(world.member.id), "annotation.deleted"),
        (annotations.user_topic(world.member2.id), "annotation.deleted")}
    assert all(set(e["data"]) == {"id", "version_id", "revision"} for e in evs)
    assert await _list(world, "member", v.id, "mine") == []


async def test_offline_replay_is_idempotent_and_limits(world: World) -> None:
    m = await world.meeting(start=True)
    v = await _doc(world, m)
    a, _ = await _create(world, "member", v.id, "offline-1", kind="ink",
                         shape={"strokes": [[[10, 10, 0.3], [20, 25, 0.6], [30, 28, 0.9]]], "width": 2})
    (again, created), evs = await run(world.db, annotations.create, world.member, v.id, client_id=_cid("offline-1"),
                                      page=1, kind="ink", shape={"strokes": [[[10, 10]]]})
    assert again.id == a.id and not created and evs == []
    # the same client id from another person is theirs, not a clash
    other, _ = await _create(world, "member2", v.id, "offline-1")
    assert other.id != a.id
    with pytest.raises(Invalid):
        await run(world.db, annotations.create, world.member, v.id, client_id="x", page=1, kind="note",
                  shape={"at": [1, 1]})
    with pytest.raises(Invalid, match="trang 3"):
        await _create(world, "member", v.id, 9, page=3)
    with pytest.raises(Invalid):
        await _create(world, "member", v.id, 10, text="x" * (annotations.MAX_TEXT + 1))


async def test_a_shared_stroke_is_written_in_few_statements(world: World) -> None:
    """The write path every live stroke takes: its SQL statements are counted (an engine event listener), so a
    change that adds round trips to it shows up here. 9: the version with its document, meeting and item; the
    user's seats and sites; replay-or-count; the insert; the audit entry (3); both topics (1), their events (1)."""
    from sqlalchemy import event

    m = await world.meeting(start=True)
    v = await _doc(world, m)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            statements.append(statement)

    for n in range(2):  # the first creates the topics: the same statements either way
        statements.clear()
        event.listen(world.db.engine.sync_engine, "before_cursor_execute", count)
        try:
            (a, created), evs = await run(world.db, annotations.create, world.member, v.id, client_id=_cid(f"sql-{n}"),
                                          page=1, kind="ink", visibility="meeting", meeting_id=m["meeting_id"],
                                          shape={"strokes": [[[10, 10, 0.3], [20, 25, 0.6]]], "width": 2})
        finally:
            event.remove(world.db.engine.sync_engine, "before_cursor_execute", count)
        assert created and len(evs) == 2
        assert len(statements) <= 9, "\n".join(s.split("\n")[0][:100] for s in statements)

    # moving it: the locked row, the version's context (2), the update, the audit entry (3), topics and events (2)
    statements.clear()
    event.listen(world.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        moved, evs = await run(world.db, annotations.update, world.member, a.id, revision=1,
                               meeting_id=m["meeting_id"], shape={"strokes": [[[30, 30, 0.5], [40, 45, 0.6]]]})
    finally:
        event.remove(world.db.engine.sync_engine, "before_cursor_execute", count)
    assert moved.revision == 2 and len(evs) == 2
    assert len(statements) <= 9, "\n".join(s.split("\n")[0][:100] for s in statements)


async def test_confidential_documents_and_closed_meetings(world: World) -> None:
    m = await world.meeting(start=True, confidential_for=["member2"])
    secret_v = await _doc(world, m, item=-1)
    # member is not on the confidential item's list: no annotations, no topic, cannot be a recipient
    with pytest.raises(Forbidden):
        await _create(world, "member", secret_v.id, 1)
    a, _ = await _create(world, "member2", secret_v.id, 2, visibility="meeting")
    async with world.db.uow() as uow:
        assert not await annotations.authorize(uow, world.member, annotations.version_topic(secret_v.id))
        assert await annotations.authorize(uow, world.member2, annotations.version_topic(secret_v.id))
        assert await annotations.authorize(uow, world.chair, annotations.version_topic(secret_v.id))
        assert not await annotations.authorize(uow, world.member, annotations.user_topic(world.member2.id))
        assert await annotations.authorize(uow, world.member, annotations.user_topic(world.member.id))
        assert not await annotations.authorize(uow, world.member, "annot:v:abc")
    with pytest.raises(Invalid, match="không được xem"):
        await call(world.db, annotations.update, world.member2, a.id, revision=1, visibility="people",
                   recipient_ids=[world.member.id])
    # an ended meeting still takes personal notes; an archived one is read only
    await call(world.db, lifecycle.end_meeting, world.chair, m["meeting_id"])
    await _create(world, "member2", secret_v.id, 3)
    await call(world.db, lifecycle.archive_meeting, world.chair, m["meeting_id"])
    with pytest.raises(Conflict, match="lưu trữ"):
        await _create(world, "member2", secret_v.id, 4)
    assert len(await _list(world, "member2", secret_v.id)) == 2


async def test_snapshot_of_the_shared_topic_never_holds_private_annotations(world: World) -> None:
    m = await world.meeting(start=True)
    v = await _doc(world, m)
    await _create(world, "member", v.id, 1, text=SECRET)
    shared, _ = await _create(world, "member", v.id, 2, visibility="meeting", text="Chia sẻ với cả cuộc họp")
    named, _ = await _create(world, "member", v.id, 3, visibility="people", recipient_ids=[world.member2.id],
                             text="Chỉ gửi anh Thắng")
    async with world.db.uow() as uow:
        for who in ("member", "member2", "chair"):
            snap = await annotations.snapshot(uow, world.users[who], annotations.version_topic(v.id))
            assert [a["id"] for a in snap["annotations"]] == [shared.id]
            assert SECRET not in json.dumps(snap, ensure_ascii=False)
        assert await annotations.snapshot(uow, world.member, annotations.user_topic(world.member.id)) == {}
    assert named.id


# ------------------------------------------------------------------------------ my annotated copy


async def _words(world: World, v: schema.DocumentVersion, page: int) -> list[list[Any]]:
    key = await documents.page_words(world.db, world.blobs, v, page)
    return json.loads(await world.blobs.read(key))["words"]


async def test_my_annotated_copy_has_real_pdf_annotations(world: World) -> None:
    m = await world.meeting(start=True)
    v = await _doc(world, m, pages=3)
    original = await world.blobs.read(v.blob_key)
    assert hashlib.sha256(original).hexdigest() == v.blob_key
    words = await _words(world, v, 2)
    dong_trieu = [w for w in words if w[4] in ("Đông", "Triều")]
    assert len(dong_trieu) == 2
    hl, _ = await _create(world, "member", v.id, 1, page=2, kind="highlight", color="#ffd400",
                          shape={"rects": [w[:4] for w in dong_trieu], "quote": "Đông Triều"})
    ink, _ = await _create(world, "member", v.id, 2, page=1, kind="ink", color="#d32f2f",
                           shape={"strokes": [[[100, 300, 0.4], [150, 320, 0.7], [200, 310, 0.9]],
                                              [[100, 340], [200, 345]]], "width": 3})
    note, _ = await _create(world, "member", v.id, 3, page=3, kind="note", shape={"at": [400, 500]}, text=NOTE_VI)
    box, _ = await _create(world, "member", v.id, 4, page=1, kind="rect", shape={"rect": [50, 400, 300, 480]},
                           color="#1565c0")
    arrow, _ = await _create(world, "chair", v.id, 5, page=1, kind="arrow", visibility="meeting",
                             shape={"from": [300, 600], "to": [450, 520], "width": 2.5})
    await _create(world, "member2", v.id, 6, page=1, kind="note", shape={"at": [50, 50]}, text=SECRET)
    await _create(world, "chair", v.id, 7, page=1, kind="note", shape={"at": [60, 60]}, text="Riêng chủ tọa",
                  visibility="people", recipient_ids=[world.member2.id])

    async with world.db.uow() as uow:
        _doc_row, _version, out = await annotation_export.my_copy(uow, world.member, world.blobs, v.id)
    assert out.count == 5 and out.method == "incremental"
    assert out.data.startswith(original)  # an incremental update: the original bytes, then ours
    assert hashlib.sha256(await world.blobs.read(v.blob_key)).hexdigest() == v.blob_key  # the stored original

    pdf = pymupdf.open(stream=out.data, filetype="pdf")
    found: dict[str, tuple[int, Any]] = {}
    pages = list(pdf)  # an annotation needs its page object alive
    for page in pages:
        for annot in page.annots():
            found[annot.info["id"]] = (page.number + 1, annot)
    assert set(found) == {f"eoffice-annotation-{a.id}" for a in (hl, ink, note, box, arrow)}

    def get(a: Any) -> tuple[int, Any]:
        return found[f"eoffice-annotation-{a.id}"]

    def near(r1: Any, r2: Any, tol: float = 4.0) -> bool:
        return all(abs(x - y) <= tol for x, y in zip(r1, r2, strict=True))

    page_no, annot = get(hl)
    assert page_no == 2 and annot.type[1] == "Highlight"
    union = pymupdf.Rect(dong_trieu[0][:4]) | pymupdf.Rect(dong_trieu[1][:4])
    assert near(annot.rect, union)
    assert annot.info["content"] == "Đông Triều" and annot.info["title"] == world.member.full_name
    assert near(annot.colors["stroke"], (1.0, 0.831, 0.0), 0.01)
    # the highlighted words are the ones under the annotation
    assert "Đông Triều" in pdf[1].get_textbox(annot.rect).replace("\n", " ")

    page_no, annot = get(ink)
    assert page_no == 1 and annot.type[1] == "Ink"
    strokes = annot.vertices
    assert len(strokes) == 2 and near(strokes[0][0], (100, 300), 0.5) and near(strokes[1][-1], (200, 345), 0.5)
    assert annot.border["width"] == 3

    page_no, annot = get(note)
    assert page_no == 3 and annot.type[1] == "Text"
    assert annot.info["content"] == NOTE_VI  # every Vietnamese letter intact
    assert near(annot.rect.tl, (400, 500), 2)

    page_no, annot = get(box)
    assert page_no == 1 and annot.type[1] == "Square" and near(annot.rect, (50, 400, 300, 480), 3)

    page_no, annot = get(arrow)
    assert page_no == 1 and annot.type[1] == "Line" and annot.info["title"] == world.chair.full_name
    assert near(annot.vertices[0], (300, 600), 0.5) and near(annot.vertices[1], (450, 520), 0.5)
    assert annot.line_ends[1] == pymupdf.PDF_ANNOT_LE_CLOSED_ARROW

    # member2's private note and the note shared with member2 only are not in member's copy
    assert SECRET.encode("utf-16-be") not in out.data and "Riêng chủ tọa" not in json.dumps(
        [a.info for p in pdf for a in p.annots()], ensure_ascii=False)
    # ...but are in member2's
    async with world.db.uow() as uow:
        _d, _v, theirs = await annotation_export.my_copy(uow, world.member2, world.blobs, v.id)
    contents = [a.info["content"] for p in pymupdf.open(stream=theirs.data, filetype="pdf") for a in p.annots()]
    assert SECRET in contents and "Riêng chủ tọa" in contents and NOTE_VI not in contents
    assert render.page_words  # the word boxes came from the reader's own cache


async def test_rotated_page_annotations_land_where_they_were_drawn(world: World) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 72), "Trang xoay", fontname="helv")
    page.set_rotation(90)
    upload = await world.upload_bytes(world.organiser, doc.tobytes(), "xoay.pdf", "application/pdf")
    m = await world.meeting(start=True)
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, m["meeting_id"],
                      upload_id=upload)
    assert v.page_sizes == [[842.0, 595.0]]  # as displayed
    a, _ = await _create(world, "member", v.id, 1, kind="rect", shape={"rect": [700, 20, 800, 100]})
    async with world.db.uow() as uow:
        _d, _v, out = await annotation_export.my_copy(uow, world.member, world.blobs, v.id)
    page = pymupdf.open(stream=out.data, filetype="pdf")[0]
    annot = next(iter(page.annots()))
    shown = annot.rect * page.rotation_matrix  # back to the page as displayed
    assert all(abs(x - y) < 3 for x, y in zip(shown, (700, 20, 800, 100), strict=True)), shown
    assert a.id


async def test_signed_pdf_stays_valid_in_the_annotated_copy(world: World) -> None:
    signed = await _signed_pdf()
    upload = await world.upload_bytes(world.organiser, signed, "to-trinh-da-ky.pdf", "application/pdf")
    m = await world.meeting(start=True)
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, m["meeting_id"],
                      upload_id=upload)
    await _create(world, "member", v.id, 1, kind="note", shape={"at": [300, 300]}, text=NOTE_VI)
    await _create(world, "member", v.id, 2, kind="rect", shape={"rect": [100, 100, 200, 160]})
    async with world.db.uow() as uow:
        _d, _v, out = await annotation_export.my_copy(uow, world.member, world.blobs, v.id)
    assert out.method == "incremental" and out.data.startswith(signed)
    status = await _validate(out.data)
    # the signed revision is untouched and its signature verifies; the copy is the signed file plus one
    # revision that adds annotations. (pyHanko's difference analysis does not whitelist added annotations and
    # calls that revision "OTHER"; Adobe Reader shows "valid, with comments added after signing".)
    assert status.intact and status.valid, status.pretty_print_details()
    assert status.coverage.name == "ENTIRE_REVISION"


# ------------------------------------------------------------------------------ a signed PDF for the test


async def _signed_pdf() -> bytes:
    import datetime as dt
    import io

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ủy ban nhân dân huyện Đông Triều"),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        f.flush()
        signing_cert = load_cert_from_pemder(f.name)
    signing_key = load_private_key_from_pemder_data(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), None)
    _SIGNER["cert"] = signing_cert
    signer = signers.SimpleSigner(signing_cert=signing_cert, signing_key=signing_key, cert_registry=None)
    base = await render.write_text_pdf([["Tờ trình số 15/TTr-UBND về việc phê duyệt đề án chuyển đổi số"]],
                                       "Tờ trình")
    out = await signers.async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(base)),
                                       signers.PdfSignatureMetadata(field_name="ChuKySo"), signer=signer)
    return out.getvalue()


_SIGNER: dict[str, Any] = {}


async def _validate(data: bytes) -> Any:
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(data))
    sig = reader.embedded_signatures[0]
    return await async_validate_pdf_signature(sig, ValidationContext(trust_roots=[_SIGNER["cert"]]))
