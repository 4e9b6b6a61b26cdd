"""Access control on every listing and search path, confidential documents included.

One scenario, the expected visibility written out by hand, then every path checked against it,
and the pure rule (access.can_see) checked against the SQL filter (access.visible)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select, text

from eoffice import access, documents, dossiers, export, live, outgoing, registers, search, stats, tasks
from eoffice.documents import register_incoming
from eoffice.schema.documents import Attachment, Document
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Forbidden, NotFound
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


# drafts (outgoing, not in the register yet): who may list each one
DRAFTS_EXPECTED = {name: set() for name in EXPECTED} | {
    "chuyenvien2": {"E", "F"},  # drafted both
    "truongphong": {"E"},  # asked to approve E (first level of a KT specialist's chain)
}
COUNT_FIELDS = {"received", "on_time", "late", "in_progress", "overdue", "on_time_rate"}


async def test_side_paths_respect_access(db: Database, org: Org, blobs: BlobStore, world: dict[str, int]) -> None:
    """The paths besides lists and search: work dossiers, the outgoing drafts list, per-person
    statistics, and the WebSocket hub's ``document:``/``unit:`` topics (authoriser and snapshot).
    None of them lets a user reach a document they may not see, its summary or its existence."""
    async with db.uow() as uow:
        e = await outgoing.create_draft(uow, org["chuyenvien2"], blobs, doc_type="cong_van", confidentiality="mat",
                                        summary="Dự thảo mật E về phương án nhân sự")
        f = await outgoing.create_draft(uow, org["chuyenvien2"], blobs, doc_type="cong_van",
                                        summary="Dự thảo F về chuyển đổi số")
        await outgoing.send_for_approval(uow, org["chuyenvien2"], e.id, org["truongphong"].id)
        await uow.commit()
    ids = {**world, "E": e.id, "F": f.id}
    names = {v: k for k, v in ids.items()}
    secret = {"B": "Văn bản B", "C": "Văn bản C", "E": "Dự thảo mật E"}  # the confidential ones' summaries
    today = registers.local_date(utcnow())
    hub = _FakeHub()
    live.register(hub)
    assert hub.authorizers == {"document:": live.authorize_document, "unit:": live.authorize_unit}
    assert hub.snapshots == {"document:": live.document_snapshot, "unit:": live.unit_snapshot}
    assert hub.access_events == set(live.ACCESS_EVENTS)

    async with db.uow() as uow:
        all_tasks = (await uow.session.scalars(select(tasks.Task))).all()
        for name, user in org.users.items():
            expected = EXPECTED[name] | DRAFTS_EXPECTED[name]
            hidden = [s for n, s in secret.items() if n not in expected]
            viewer = await access.viewer_for(uow, user)
            # work dossiers: only what the owner may see can be filed, and contents follow the rule
            d = await dossiers.open_dossier(uow, user, f"Hồ sơ của {user.full_name}")
            for doc_name, doc_id in ids.items():
                if doc_name in expected:
                    await dossiers.file_document(uow, user, d.id, doc_id)
                else:
                    with pytest.raises(NotFound):
                        await dossiers.file_document(uow, user, d.id, doc_id)
            for t in all_tasks:
                if names[t.document_id] in expected:
                    await dossiers.file_task(uow, user, d.id, t.id)
                else:
                    with pytest.raises(NotFound):
                        await dossiers.file_task(uow, user, d.id, t.id)
            content = await dossiers.contents(uow, user, d.id)
            assert {names[x["id"]] for x in content["documents"]} == expected, name
            assert {names[x["document_id"]] for x in content["tasks"]} <= expected, name
            for other in org.users.values():  # a dossier is its owner's alone
                if other.id != user.id:
                    with pytest.raises(NotFound):
                        await dossiers.contents(uow, other, d.id)
            # outgoing drafts
            for status in (None, "draft", "in_review"):
                listed = {names[x.id] for x in await outgoing.drafts(uow, user, status=status)}
                assert listed <= DRAFTS_EXPECTED[name], (name, status)
            assert {names[x.id] for x in await outgoing.drafts(uow, user)} == DRAFTS_EXPECTED[name], name
            # statistics per person: counts only (no ids, titles or summaries of documents), the
            # people of the actor's own agency, and only the actor's own row for a non-leader/clerk
            for level in ("person", "unit", "agency"):
                wide = user.has_role("leader", "clerk", "admin")
                if not wide and level != "person":
                    with pytest.raises(Forbidden):
                        await stats.statistics(uow, user, date_from=today, date_to=today, level=level)
                    continue
                figures = await stats.statistics(uow, user, date_from=today, date_to=today, level=level)
                assert all(set(r) == COUNT_FIELDS | {"id", "name"} for r in figures["rows"]), (name, level)
                assert not any(s in repr(figures) for s in secret.values()), (name, level)
                if level == "person":
                    people = {u.id for u in org.users.values() if u.unit_id in _agency_units(org, user)}
                    rows = {r["id"] for r in figures["rows"]}
                    assert rows <= (people if wide else {user.id}), name
                    if wide and org["chuyenvien"].id in people:  # B's task, counted, nothing more
                        assert org["chuyenvien"].id in rows, name
            # WebSocket topics: document:{id} only for readers, its snapshot NotFound for anybody else
            for doc_name, doc_id in ids.items():
                topic = f"document:{doc_id}"
                assert await live.authorize_document(uow, user, topic) == (doc_name in expected), (name, doc_name)
                if doc_name in expected:
                    assert (await live.document_snapshot(uow, user, topic))["document"]["id"] == doc_id
                else:
                    with pytest.raises(NotFound):
                        await live.document_snapshot(uow, user, topic)
            for bad in ("document:", "document:abc", f"document:{ids['B']}x", f"unit:{ids['B']}",
                        "document:" + "9" * 20):
                assert not await live.authorize_document(uow, user, bad), (name, bad)
            # unit:{id} only for its listeners; their snapshot lists only what each may see
            for unit in org.units.values():
                topic = f"unit:{unit.id}"
                allowed = await live.authorize_unit(uow, user, topic)
                assert allowed == (unit.id in viewer.unit_ids), (name, unit.code)
                if not allowed:
                    with pytest.raises(NotFound):
                        await live.unit_snapshot(uow, user, topic)
                    continue
                snap = await live.unit_snapshot(uow, user, topic)
                for key in ("informed", "to_issue", "registered"):
                    assert {names[x["id"]] for x in snap[key]} <= expected, (name, unit.code, key)
                assert {names[t["document_id"]] for t in snap["tasks"]} <= expected, (name, unit.code)
                assert not any(s in repr(snap) for s in hidden), (name, unit.code)
            assert not await live.authorize_unit(uow, user, "unit:x")
            assert not any(s in repr(content) for s in hidden), name
        # access shrinks after filing: A made confidential leaves vanthu2's dossier, topic and unit snapshot
        clerk2 = org["vanthu2"]
        (mine,) = await dossiers.list_dossiers(uow, clerk2)
        agency_topic = f"unit:{org.units['UBND'].id}"
        assert [x["id"] for x in (await dossiers.contents(uow, clerk2, mine.id))["documents"]] == [ids["A"]]
        assert ids["A"] in {x["id"] for x in (await live.unit_snapshot(uow, clerk2, agency_topic))["registered"]}
        a = await uow.session.get(documents.Document, ids["A"])
        assert a is not None
        a.confidentiality = "mat"
        search.keys_changed(uow, [a.id])  # a change outside the services says so (eoffice.search)
        await uow.session.flush()
        assert (await dossiers.contents(uow, clerk2, mine.id))["documents"] == []
        assert not await live.authorize_document(uow, clerk2, f"document:{ids['A']}")
        assert ids["A"] not in {x["id"] for x in (await live.unit_snapshot(uow, clerk2, agency_topic))["registered"]}


class _FakeHub:
    def __init__(self) -> None:
        self.authorizers: dict[str, object] = {}
        self.snapshots: dict[str, object] = {}
        self.access_events: set[str] = set()

    def add_authorizer(self, prefix: str, fn: object) -> None:
        self.authorizers[prefix] = fn

    def add_snapshot(self, prefix: str, fn: object) -> None:
        self.snapshots[prefix] = fn

    def add_access_events(self, *kinds: str) -> None:
        self.access_events.update(kinds)


def _agency_units(org: Org, user: object) -> set[int]:
    """The units whose people are in the statistics of the user's agency (a nested agency keeps its own)."""
    by_code = {"VP": "UBND", "KT": "UBND", "UBND": "UBND", "STTTT": "STTTT", "DT": "DT"}
    mine = next(c for c, u in org.units.items() if u.id == user.unit_id)  # type: ignore[attr-defined]
    return {org.units[c].id for c, a in by_code.items() if a == by_code[mine]}


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
        search.keys_changed(uow, [a.id])  # a change outside the services says so (eoffice.search)
        await search.write_keys(uow)
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
