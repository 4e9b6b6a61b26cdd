"""The units, merge, positions and delegation pages over HTTP (#18): administrators only (403 otherwise), CSRF on
every form, a cycle refused with its Vietnamese reason, a merge previewed then confirmed, the document page's
«trước đây», a delegation made and revoked by the leader, and «thay mặt» on the audit page."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import identity, tasks
from eoffice.documents import register_incoming
from eoffice.org import Role, Unit, UnitKind, UnitStatus
from storage.blobs import open_blob_store
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.conftest import PASSWORD, Org, incoming_fields, make_org
from tests.web.conftest import csrf_from, login, run


async def _world(settings: Settings) -> tuple[Org, dict[str, int]]:
    """The test organisation, two communes under Đông Triều each with a registered document, and a deputy."""
    db = Database(settings.database_url)
    blobs = open_blob_store(settings.blob_url)
    try:
        org = await make_org(db)
        ids: dict[str, int] = {}
        async with db.uow() as uow:
            for code, name in (("BK", "Ủy ban nhân dân xã Bình Khê"), ("TL", "Ủy ban nhân dân xã Tràng Lương")):
                unit = Unit(code=code, name=name, kind=UnitKind.COMMUNE, is_agency=True, parent_id=org.units["DT"].id)
                uow.session.add(unit)
                await uow.session.flush()
                clerk = await identity.create_user(
                    uow,
                    None,
                    username=f"{code.lower()}.vanthu",
                    full_name=f"Văn thư {name}",
                    password=PASSWORD,
                    roles=[Role.CLERK],
                    unit_id=unit.id,
                )
                doc, _ = await register_incoming(
                    uow,
                    clerk,
                    blobs,
                    **incoming_fields(len(ids), summary=f"Công văn về việc sắp xếp đơn vị hành chính ({name})"),
                    paper_only=True,
                )
                ids[code], ids[f"{code}.doc"] = unit.id, doc.id
            deputy = await identity.create_user(
                uow,
                None,
                username="phochutich",
                full_name="Lê Minh Tuấn",
                password=PASSWORD,
                roles=[Role.LEADER],
                unit_id=org.units["UBND"].id,
                title="Phó Chủ tịch UBND tỉnh",
            )
            ids["deputy"] = deputy.id
            doc, _ = await register_incoming(
                uow,
                org["vanthu"],
                blobs,
                **incoming_fields(9, summary="Công văn về việc triển khai chính quyền điện tử"),
                paper_only=True,
            )
            await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
            ids["submitted"] = doc.id
            await uow.commit()
        return org, ids
    finally:
        await blobs.close()
        await db.dispose()


def _post(client: TestClient, page: str, url: str, data: dict[str, object]) -> httpx.Response:
    token = csrf_from(client.get(page).text)
    return client.post(url, data={**data, "csrf_token": token})


def test_only_administrators_and_only_with_csrf(client: TestClient, settings: Settings) -> None:
    run(_world(settings))
    login(client, "chuyenvien")
    for path in ("/admin/units", "/admin/units/merge", "/admin/positions"):
        assert client.get(path).status_code == 403
    token = csrf_from(client.get("/account").text)
    r = client.post("/admin/units", data={"code": "X", "name": "Phòng mới", "kind": "office", "csrf_token": token})
    assert r.status_code == 403
    r = client.post(
        "/admin/units/merge", data={"source_ids": "1", "target_id": "2", "confirm": "1", "csrf_token": token}
    )
    assert r.status_code == 403
    assert client.get("/delegations").status_code == 403  # a specialist has nothing to delegate
    client.cookies.clear()
    login(client, "admin")
    r = client.post("/admin/units", data={"code": "X", "name": "Phòng mới", "kind": "office"})  # no CSRF token
    assert r.status_code == 403


def test_units_tree_create_rename_move_cycle_close(client: TestClient, settings: Settings) -> None:
    org, _ = run(_world(settings))
    login(client, "admin")
    page = client.get("/admin/units")
    assert page.status_code == 200 and "Cơ cấu tổ chức" in page.text and "Ủy ban nhân dân xã Bình Khê" in page.text
    r = _post(
        client,
        "/admin/units",
        "/admin/units",
        {"code": "TC", "name": "Phòng Tài chính", "kind": "office", "parent_id": org.units["UBND"].id},
    )
    assert r.status_code == 303
    tc = int(re.search(r'id="unit-(\d+)" data-code="TC"', client.get("/admin/units").text).group(1))  # type: ignore[union-attr]
    r = _post(
        client,
        "/admin/units",
        f"/admin/units/{tc}/update",
        {"name": "Phòng Tài chính - Kế hoạch", "agency_code": "000.00.31.H41", "rank": "5"},
    )
    assert r.status_code == 303
    page = client.get("/admin/units").text
    assert "Phòng Tài chính - Kế hoạch" in page and "000.00.31.H41" in page
    r = _post(client, "/admin/units", f"/admin/units/{org.units['UBND'].id}/move", {"parent_id": tc})
    assert r.status_code == 409 and "vòng lặp" in r.text
    r = _post(client, "/admin/units", f"/admin/units/{org.units['KT'].id}/close", {"reason": "Sắp xếp lại"})
    assert r.status_code == 409 and "cán bộ" in r.text
    r = _post(client, "/admin/units", f"/admin/units/{tc}/close", {"reason": "Sắp xếp lại"})
    assert r.status_code == 303
    page = client.get("/admin/units").text
    assert re.search(rf'id="unit-{tc}" data-code="TC" data-status="closed"', page) and "Đã giải thể" in page
    audit = client.get("/admin/audit").text
    assert "Thêm đơn vị" in audit and "Giải thể đơn vị" in audit


def test_merge_preview_then_confirm_and_document_shows_former_unit(client: TestClient, settings: Settings) -> None:
    org, ids = run(_world(settings))
    login(client, "admin")
    form = {
        "source_ids": [str(ids["BK"]), str(ids["TL"])],
        "target_id": "new",
        "new_code": "BKM",
        "new_name": "Ủy ban nhân dân xã Bình Khê mới",
        "new_kind": "commune",
        "new_parent_id": str(org.units["DT"].id),
        "new_agency_code": "000.21.15.H41",
    }
    r = _post(client, "/admin/units/merge", "/admin/units/merge", form)
    assert r.status_code == 200 and 'id="merge-preview"' in r.text
    assert "2 văn bản" in r.text and "2 cán bộ" in r.text and "2 sổ đăng ký" in r.text
    assert client.get("/admin/units").text.count('data-status="merged"') == 0  # the preview changed nothing
    r = _post(client, "/admin/units/merge", "/admin/units/merge", {**form, "confirm": "1"})
    assert r.status_code == 303
    page = client.get("/admin/units").text
    assert page.count('data-status="merged"') == 2 and "Ủy ban nhân dân xã Bình Khê mới" in page
    merge_page = client.get("/admin/units/merge").text  # merged communes are no longer offered
    assert f'name="source_ids" value="{ids["BK"]}"' not in merge_page
    client.cookies.clear()
    login(client, "tl.vanthu")
    doc = client.get(f"/documents/{ids['BK.doc']}")  # commune A's document, read by commune B's former clerk
    assert doc.status_code == 200
    assert "trước đây: Ủy ban nhân dân xã Bình Khê" in doc.text
    found = client.get("/api/search", params={"q": "sap xep don vi hanh chinh", "unit_id": _unit_id(settings)})
    assert found.status_code == 200
    assert {h["id"] for h in found.json()["items"]} == {ids["BK.doc"], ids["TL.doc"]}


def _unit_id(settings: Settings) -> int:
    async def find() -> int:
        db = Database(settings.database_url)
        try:
            async with db.uow(readonly=True) as uow:
                unit = await uow.session.scalar(select(Unit).where(Unit.code == "BKM"))
                assert unit is not None and unit.status == UnitStatus.ACTIVE
                return unit.id
        finally:
            await db.dispose()

    return int(run(find()))  # type: ignore[call-overload]


def test_delegation_made_used_and_revoked(client: TestClient, settings: Settings) -> None:
    org, ids = run(_world(settings))
    login(client, "phochutich")
    assert client.get(f"/documents/{ids['submitted']}").status_code == 404  # not before
    client.cookies.clear()
    login(client, "lanhdao")
    ends = (dt.datetime.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    r = _post(
        client,
        "/delegations",
        "/delegations",
        {"to_user_id": ids["deputy"], "scopes": ["direct", "approve"], "ends_at": ends, "note": "Đi công tác Hà Nội"},
    )
    assert r.status_code == 303
    page = client.get("/delegations").text
    assert "Đang hiệu lực" in page and "Lê Minh Tuấn" in page
    delegation_id = int(re.search(r'id="delegation-(\d+)"', page).group(1))  # type: ignore[union-attr]
    client.cookies.clear()
    login(client, "phochutich")
    doc = client.get(f"/documents/{ids['submitted']}")
    assert doc.status_code == 200 and 'action="/documents/' in doc.text and "/direction" in doc.text
    kt = org.units["KT"].id
    r = _post(
        client,
        f"/documents/{ids['submitted']}",
        f"/documents/{ids['submitted']}/direction",
        {"text": "Giao Phòng Kinh tế chủ trì.", "main": f"unit:{kt}"},
    )
    assert r.status_code == 303, r.text
    doc = client.get(f"/documents/{ids['submitted']}").text
    assert "Phó Chủ tịch UBND tỉnh Lê Minh Tuấn thay mặt" in doc
    client.cookies.clear()
    login(client, "lanhdao")
    r = _post(client, "/delegations", f"/delegations/{delegation_id}/revoke", {})
    assert r.status_code == 303
    assert "Đã thu hồi" in client.get("/delegations").text
    client.cookies.clear()
    login(client, "admin")
    audit = client.get("/admin/audit").text
    assert "Lê Minh Tuấn thay mặt" in audit and "Thu hồi ủy quyền" in audit
