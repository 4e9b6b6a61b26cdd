"""Access control on every listing and search path, confidential documents included.

One scenario, the expected visibility written out by hand, then every path checked against it,
and the pure rule (access.can_see) checked against the SQL filter (access.visible)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select, text

from eoffice import access, documents, export, search, tasks
from eoffice.documents import Attachment, Document, register_incoming
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import NotFound
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload

# who sees what (A..D defined in scenario())
EXPECTED = {
    "vanthu": {"A", "B"},  # A by the register rule, B because they registered it
    "vanthu2": {"A"},  # same agency's clerk: ordinary documents only
    "lanhdao": {"B"},  # submitted and directed
    "truongphong": {"B"},  # head of the assigned unit
    "chuyenvien": {"B"},  # passed down to
    "chuyenvien2": set(),
    "chanhvp": set(),
    "admin": set(),  # administrators do not read documents
    "stttt.vanthu": {"C", "D"},
    "stttt.giamdoc": set(),
    "dt.vanthu": set(),
}


async def scenario(db: Database, org: Org, blobs: BlobStore) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with db.uow() as uow:
        for name, clerk, level in [("A", "vanthu", "thuong"), ("B", "vanthu", "mat"),
                                   ("C", "stttt.vanthu", "toi_mat"), ("D", "stttt.vanthu", "thuong")]:
            pdf = await upload(uow, org[clerk], blobs, make_pdf([f"Tài liệu {name}: triển khai chính quyền số"]))
            doc, _ = await register_incoming(uow, org[clerk], blobs, **incoming_fields(
                ord(name), summary=f"Văn bản {name} về triển khai chính quyền điện tử", confidentiality=level),
                upload_ids=[pdf])
            ids[name] = doc.id
        await uow.commit()
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], ids["B"], org["lanhdao"].id)
        _, (t,) = await tasks.direct(uow, org["lanhdao"], ids["B"], text="Phòng Kinh tế xử lý",
                                     main={"unit_id": org.units["KT"].id})
        await uow.commit()
    async with db.uow() as uow:
        await tasks.pass_down(uow, org["truongphong"], t.id, main_user_id=org["chuyenvien"].id)
        await uow.commit()
    return ids


@pytest.fixture
async def world(db: Database, org: Org, blobs: BlobStore) -> dict[str, int]:
    return await scenario(db, org, blobs)


async def test_pure_rule_matches_sql_filter(db: Database, org: Org, world: dict[str, int]) -> None:
    async with db.uow() as uow:
        docs = (await uow.session.scalars(select(Document))).all()
        for name, user in org.users.items():
            viewer = await access.viewer_for(uow, user)
            sql = set((await uow.session.scalars(select(Document.id).where(access.visible(viewer)))).all())
            pure = {d.id for d in docs if access.can_see(viewer, await access.facts(uow, d))}
            assert sql == pure, name
            assert sql == {world[x] for x in EXPECTED[name]}, name


async def test_every_path_respects_access(db: Database, org: Org, blobs: BlobStore, world: dict[str, int]) -> None:
    names = {v: k for k, v in world.items()}
    async with db.uow() as uow:
        all_tasks = (await uow.session.scalars(select(tasks.Task))).all()
        attachments = (await uow.session.scalars(select(Attachment))).all()
        for name, user in org.users.items():
            expected = EXPECTED[name]
            # get one
            for doc_name, doc_id in world.items():
                if doc_name in expected:
                    await documents.get_document(uow, user, doc_id)
                    await tasks.task_tree(uow, user, doc_id)
                else:
                    with pytest.raises(NotFound):
                        await documents.get_document(uow, user, doc_id)
                    with pytest.raises(NotFound):
                        await tasks.task_tree(uow, user, doc_id)
            # lists
            listed, total = await documents.list_documents(uow, user)
            assert {names[d.id] for d in listed} == expected and total == len(expected), name
            # search with and without a query, and by a word found only in the extracted text... or summary
            for q in ("trien khai chinh quyen", "Văn bản", ""):
                hits = await search.search(uow, user, q)
                assert {names[h.document.id] for h in hits} == expected, (name, q)
            hits = await search.search(uow, user, "", search.Filters(confidentiality="mat"))
            assert {names[h.document.id] for h in hits} == expected & {"B"}, name
            # attachments, thumbnails
            for att in attachments:
                if names[att.document_id] in expected:
                    await documents.get_attachment(uow, user, att.id)
                else:
                    with pytest.raises(NotFound):
                        await documents.get_attachment(uow, user, att.id)
                    with pytest.raises(NotFound):
                        await documents.page_image(uow, user, blobs, att.id, 1)
            # tasks: inbox, board, single task
            box = await tasks.inbox(uow, user)
            for key in ("submitted", "informed"):
                assert {names[d["id"]] for d in box[key]} <= expected
            assert {names[t["document_id"]] for t in box["tasks"]} <= expected
            for scope in ("assigned_to_me", "assigned_by_me"):
                assert {names[t.document_id] for t in await tasks.my_tasks(uow, user, scope=scope)} <= expected
            # register exports (clerks and leaders): ordinary and confidential registers
            if user.has_role("clerk", "leader"):
                year = (await documents.get_document(uow, org["vanthu"], world["A"])).year or 0
                rows = []
                for confidential in (False, True):
                    rows += (await export.register_rows(uow, user, "in", year, confidential))[2]
                notations = {(await documents.get_document(uow, org[c], world[n])).notation: n
                             for n, c in [("A", "vanthu"), ("B", "vanthu"), ("C", "stttt.vanthu"),
                                          ("D", "stttt.vanthu")]}
                assert {notations[r[3]] for r in rows} <= expected, name
            for t in all_tasks:
                if names[t.document_id] in expected:
                    await tasks.get_task(uow, user, t.id)
                else:
                    with pytest.raises(NotFound):
                        await tasks.get_task(uow, user, t.id)


async def _stored_keys(uow: object, doc_id: int) -> set[str]:
    sql = text("SELECT u.lexeme FROM documents, unnest(search_vector) AS u WHERE id = :id AND u.lexeme LIKE '~%'")
    return set((await uow.session.scalars(sql, {"id": doc_id})).all())  # type: ignore[attr-defined]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the keys live in PostgreSQL's search vector
async def test_search_keys_follow_grants_and_fields(db: Database, org: Org, world: dict[str, int]) -> None:
    """PostgreSQL search reads the reader keys stored in the vector: after every flow step they are
    ``reader_keys`` of the live facts, and a document made confidential leaves the clerk's search."""
    async with db.uow() as uow:
        for doc in (await uow.session.scalars(select(Document))).all():
            expected = set(search.meta_lexemes(doc.id, access.reader_keys(await access.facts(uow, doc)),
                                                doc.date_issued))
            assert await _stored_keys(uow, doc.id) == expected
        assert f"~u:{org['chuyenvien'].id}" in await _stored_keys(uow, world["B"])  # granted by pass_down
        a = await uow.session.get(Document, world["A"])
        assert a is not None
        a.confidentiality = "mat"
        await uow.session.flush()
        assert f"~r:{a.agency_id}" not in await _stored_keys(uow, a.id)
        assert await search.search(uow, org["vanthu2"], "trien khai chinh quyen") == []
        hits = await search.search(uow, org["vanthu"], "trien khai chinh quyen")  # A: registered it
        assert {h.document.id for h in hits} == {world["A"], world["B"]}


async def test_search_rounds_over_recency_buckets(db: Database, org: Org, blobs: BlobStore, world: dict[str, int],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With 2 ids a bucket every PostgreSQL search goes back in several rounds: the same hits as one
    pass, and with a small candidate bound still the newest match and nothing the user may not see."""
    monkeypatch.setattr(search, "BUCKET_BITS", 1)
    async with db.uow() as uow:
        for i in range(6):
            await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(
                100 + i, summary=f"Kế hoạch {i} triển khai chính quyền điện tử"))
        for doc in (await uow.session.scalars(select(Document))).all():
            await search.index_document(uow, doc)
        await uow.commit()
    async with db.uow() as uow:
        for (name, user), wide in itertools.product(org.users.items(), (32, 1)):
            monkeypatch.setattr(search, "MAX_ROUND_BUCKETS", wide)  # 1: rounds past a bucket bound the id
            visible = set((await uow.session.scalars(
                select(Document.id).where(access.visible(await access.viewer_for(uow, user))))).all())
            hits = await search.search(uow, user, "trien khai chinh quyen", limit=100)
            assert {h.document.id for h in hits} == visible, name
            assert [h.rank for h in hits] == sorted((h.rank for h in hits), reverse=True)
            few = {h.document.id for h in await search.search(uow, user, "trien khai", candidates=1)}
            assert few <= visible and (max(visible) in few if visible else not few), name
            listed = [h.document.id for h in await search.search(uow, user, "", limit=100)]
            assert listed == sorted(visible, reverse=True), name  # created in id order: newest first
            assert [h.document.id for h in await search.search(uow, user, "", limit=2, offset=1)] == listed[1:3]
