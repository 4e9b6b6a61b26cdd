"""Issue #22, items 7, 8 and 9 through the pages and the JSON API, on SQLite and PostgreSQL: the
direction and pass-down pickers offer only who may take the task, grouped by unit and by rank; the
API refuses anyone else with a Vietnamese 400 naming the field; a specialist's progress moves the
unit's task; the unit head confirms it in one step with the sub-results; statistics count the
document once and the rolled-up completion as done; the document page shows its deadline and the
PDF beside the direction form."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote

from starlette.testclient import TestClient

from eoffice import tasks
from eoffice.documents import register_incoming
from eoffice.org import Unit, User
from eoffice.registers import local_date
from storage.blobs import open_blob_store
from storage.db import Database, utcnow
from storage.settings import Settings
from tests.eoffice.conftest import incoming_fields, make_org, make_pdf, upload
from tests.web.conftest import csrf_from, login, make_token, run


async def _world(settings: Settings) -> dict[str, Any]:
    """The organisation with ranks that differ from the names' order, and an incoming document with
    a PDF submitted to the province's leader."""
    db, blobs = Database(settings.database_url), open_blob_store(settings.blob_url)
    try:
        org = await make_org(db)
        async with db.uow() as uow:
            for code, rank in (("KT", 1), ("VP", 2)):
                unit = await uow.session.get(Unit, org.units[code].id)
                assert unit is not None
                unit.rank = rank
            for name, rank in (("truongphong", 1), ("chuyenvien", 5), ("chuyenvien2", 9)):
                user = await uow.session.get(User, org[name].id)
                assert user is not None
                user.rank = rank
            pdf = await upload(uow, org["vanthu"], blobs, make_pdf(["Đề nghị triển khai chuyển đổi số"] * 2))
            doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1), upload_ids=[pdf])
            await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
            await uow.commit()
        return {"doc": doc.id, "users": {k: u.id for k, u in org.users.items()},
                "units": {k: u.id for k, u in org.units.items()}}
    finally:
        await blobs.close()
        await db.dispose()


def _select(page: str, marker: str) -> str:
    part = page[page.index(marker):]
    return part[:part.index("</select>")]


def test_pickers_offer_only_who_may_take_the_task_and_the_api_refuses_others(client: TestClient,
                                                                             settings: Settings) -> None:
    w = run(_world(settings))
    doc, u, n = w["doc"], w["users"], w["units"]  # type: ignore[index]
    login(client, "lanhdao")
    page = client.get(f"/documents/{doc}").text
    main = _select(page, 'id="direct-main"')
    assert re.findall(r'<optgroup label="([^"]+)"', main) == [
        "Phòng Kinh tế", "Văn phòng Ủy ban nhân dân tỉnh", "Sở Thông tin và Truyền thông"]
    assert re.findall(r'<option value="((?:user|unit):\d+)"', main) == [
        f"unit:{n['KT']}", f"user:{u['truongphong']}", f"user:{u['chuyenvien']}", f"user:{u['chuyenvien2']}",
        f"unit:{n['VP']}", f"user:{u['chanhvp']}", f"unit:{n['STTTT']}"]
    collab = page[page.index('id="direct-collaborators"'):]
    collab = collab[:collab.index("Gửi để biết")]
    for name in ("Quản trị hệ thống", "Nguyễn Thị Lan", "Trịnh Thị Ngọc", "Trần Văn Hùng"):  # admin, clerks, self
        assert name not in main and name not in collab, name
    assert f'value="user:{u["vanthu"]}"' not in collab and f'value="unit:{n["DT"]}"' not in collab
    # item 7: the document's pages beside the form, which comes before the document's details
    assert 'id="direct-pdf"' in page and re.search(r'/api/attachments/\d+/pages/2\.png', page)
    assert page.index('id="direct-main"') < page.index('id="h-meta"')

    boss = {"Authorization": f"Bearer {make_token(settings, 'lanhdao')}"}
    for body, field, words in (
            ({"main": {"user_id": u["vanthu"]}}, "main", "Nguyễn Thị Lan"),
            ({"main": {"user_id": u["admin"]}}, "main", "không thể nhận nhiệm vụ chủ trì"),
            ({"main": {"user_id": u["lanhdao"]}}, "main", "chính mình"),
            ({"main": {"unit_id": n["DT"]}}, "main", "Đông Triều"),
            ({"main": {"unit_id": n["KT"]}, "collaborators": [{"user_id": u["vanthu2"]}]}, "collaborators",
             "phối hợp")):
        r = client.post(f"/api/documents/{doc}/direction", json={"text": "Giao xử lý", **body}, headers=boss)
        assert r.status_code == 400 and r.json()["field"] == field and words in r.json()["message"], r.text
    r = client.post(f"/documents/{doc}/direction", data={"csrf_token": csrf_from(page), "text": "Giao xử lý",
                                                          "main": f"user:{u['admin']}"})
    assert r.status_code == 400 and "Quản trị hệ thống» không thể nhận nhiệm vụ chủ trì" in r.text

    # the document page shows no deadline, then the direction's once set
    assert re.search(r'id="doc-deadline">—<', page)
    deadline = local_date(utcnow()) + dt.timedelta(days=9)
    r = client.post(f"/api/documents/{doc}/direction", headers=boss, json={
        "text": "Phòng Kinh tế chủ trì tham mưu.", "main": {"unit_id": n["KT"]}, "deadline": deadline.isoformat()})
    assert r.status_code == 201, r.text
    unit_task = r.json()["tasks"][0]["id"]
    page = client.get(f"/documents/{doc}").text
    assert f'id="doc-deadline">{deadline:%d/%m/%Y}' in page and f"Hạn xử lý {deadline:%d/%m/%Y}" in page
    # handing the task to someone else: the same people, not the unit that has it, refused otherwise
    handover = _select(client.get(f"/tasks/{unit_task}").text, 'name="assignee"')
    assert f'value="user:{u["chuyenvien"]}"' in handover and f'value="unit:{n["VP"]}"' in handover
    assert f'value="unit:{n["KT"]}"' not in handover and "Nguyễn Thị Lan" not in handover
    r = client.post(f"/api/tasks/{unit_task}/reassign", json={"assignee": {"user_id": u["vanthu"]}}, headers=boss)
    assert r.status_code == 400 and r.json()["field"] == "assignee" and "Nguyễn Thị Lan" in r.json()["message"]

    # pass-down: the head's unit only, by rank, never the head himself nor the chairman
    client.cookies.clear()
    login(client, "truongphong")
    page = client.get(f"/tasks/{unit_task}").text
    picks = _select(page, 'name="main_user_id"')
    assert re.findall(r'<option value="(\d+)"', picks) == [str(u["chuyenvien"]), str(u["chuyenvien2"])]
    assert "Trần Văn Hùng" not in picks and "Đỗ Quang Vinh" not in picks
    head = {"Authorization": f"Bearer {make_token(settings, 'truongphong')}"}
    r = client.post(f"/api/tasks/{unit_task}/pass-down", json={"main_user_id": u["truongphong"]}, headers=head)
    assert r.status_code == 400 and r.json()["field"] == "main_user_id" and "chính mình" in r.json()["message"]
    r = client.post(f"/api/tasks/{unit_task}/pass-down", headers=head,
                    json={"main_user_id": u["chuyenvien"], "collaborator_ids": [u["lanhdao"]]})
    assert r.status_code == 400 and r.json()["field"] == "collaborator_ids", r.text


def test_specialists_progress_rolls_up_and_the_head_confirms_in_one_step(client: TestClient,
                                                                         settings: Settings) -> None:
    w = run(_world(settings))
    doc, u, n = w["doc"], w["users"], w["units"]  # type: ignore[index]
    bearer = {name: {"Authorization": f"Bearer {make_token(settings, name)}"}
              for name in ("lanhdao", "truongphong", "chuyenvien", "chuyenvien2")}
    r = client.post(f"/api/documents/{doc}/direction", headers=bearer["lanhdao"], json={
        "text": "Phòng Kinh tế chủ trì, chị Hà phối hợp.", "main": {"unit_id": n["KT"]},
        "collaborators": [{"user_id": u["chuyenvien"]}]})
    assert r.status_code == 201, r.text
    unit_task, collab_task = (t["id"] for t in r.json()["tasks"])
    r = client.post(f"/api/tasks/{unit_task}/pass-down", headers=bearer["truongphong"],
                    json={"main_user_id": u["chuyenvien"], "collaborator_ids": [u["chuyenvien2"]]})
    assert r.status_code == 201, r.text
    main_child, other_child = (t["id"] for t in r.json()["tasks"])

    r = client.post(f"/api/tasks/{main_child}/updates", json={"progress": 100, "text": "Xong dự thảo"},
                    headers=bearer["chuyenvien"])
    assert r.status_code == 201, r.text
    parent = client.get(f"/api/tasks/{unit_task}", headers=bearer["lanhdao"]).json()["task"]
    assert (parent["progress"], parent["status"]) == (50, "in_progress")

    r = client.post("/api/files", content=make_pdf(["Báo cáo kết quả"]), headers={
        **bearer["chuyenvien"], "Content-Type": "application/pdf", "X-Filename": quote("báo-cáo-kt.pdf")})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/tasks/{main_child}/complete", headers=bearer["chuyenvien"],
                    json={"result": "Báo cáo số 45/BC-KT", "upload_ids": [r.json()["id"]]})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/tasks/{other_child}/complete", headers=bearer["chuyenvien2"],
                    json={"result": "Đã góp ý số liệu"})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/tasks/{collab_task}/complete", headers=bearer["chuyenvien"], json={"result": "Đã phối hợp"})
    assert r.status_code == 200, r.text

    # statistics: the document once, done, before the head confirms
    today = local_date(utcnow())
    for level, key in (("agency", "Ủy ban nhân dân tỉnh Quảng Ninh"), ("unit", "Phòng Kinh tế")):
        r = client.get(f"/api/statistics?level={level}&from={today.replace(day=1)}&to={today}",
                       headers=bearer["lanhdao"])
        row = next(x for x in r.json()["rows"] if x["name"] == key)
        assert (row["received"], row["on_time"], row["in_progress"]) == (1, 1, 0), (level, r.json())
        assert r.json()["total"]["received"] == 1

    client.cookies.clear()
    login(client, "lanhdao")  # the statistics page: one document received, done on time
    page = client.get(f"/statistics?level=unit&from={today.replace(day=1)}&to={today}").text
    assert re.search(r"Tiếp nhận<b>1</b>", page) and re.search(r"Đúng hạn<b>1</b>", page), page
    client.cookies.clear()
    login(client, "truongphong")
    page = client.get(f"/tasks/{unit_task}").text
    assert "Kết quả của cấp dưới" in page and "Báo cáo số 45/BC-KT" in page and "báo-cáo-kt.pdf" in page
    assert "Xác nhận hoàn thành kèm kết quả cấp dưới" in page
    r = client.post(f"/tasks/{unit_task}/complete", data={"csrf_token": csrf_from(page), "result": ""})
    assert r.status_code == 303, r.text
    view = client.get(f"/api/tasks/{unit_task}", headers=bearer["lanhdao"]).json()
    assert view["task"]["status"] == "done" and view["task"]["progress"] == 100
    assert "Phạm Thu Hà (chủ trì): Báo cáo số 45/BC-KT" in view["task"]["result"]
    assert "Lý Văn Đức (phối hợp): Đã góp ý số liệu" in view["task"]["result"]
    (f,) = [x for x in view["updates"] if x["kind"] == "file"]
    assert f["filename"] == "báo-cáo-kt.pdf"
    got = client.get(f["file_url"], headers=bearer["lanhdao"])
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert client.get(f"/api/documents/{doc}", headers=bearer["lanhdao"]).json()["document"]["status"] == "done"
