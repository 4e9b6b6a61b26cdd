"""The assigner takes a task back or gives it to someone else: buttons on the task page, the
JSON API, and who may not."""

from __future__ import annotations

import datetime as dt

from starlette.testclient import TestClient

from eoffice import tasks
from eoffice.documents import register_incoming
from storage.blobs import open_blob_store
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.conftest import incoming_fields, make_org, make_pdf, upload
from tests.web.conftest import csrf_from, login, make_token, run


async def _directed(settings: Settings) -> dict[str, int]:
    db, blobs = Database(settings.database_url), open_blob_store(settings.blob_url)
    try:
        org = await make_org(db)
        async with db.uow() as uow:
            pdf = await upload(uow, org["vanthu"], blobs, make_pdf())
            doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1), upload_ids=[pdf])
            await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
            _, (task,) = await tasks.direct(uow, org["lanhdao"], doc.id, text="Phòng Kinh tế tham mưu",
                                            main={"unit_id": org.units["KT"].id},
                                            deadline=dt.date.today() + dt.timedelta(days=10))
            await uow.commit()
        return {"task": task.id, "cv2": org["chuyenvien2"].id}
    finally:
        await blobs.close()
        await db.dispose()


def test_reassign_from_the_page_and_withdraw_through_the_api(client: TestClient, settings: Settings) -> None:
    ids = run(_directed(settings))
    task = ids["task"]  # type: ignore[index]
    login(client, "lanhdao")
    page = client.get(f"/tasks/{task}")
    assert page.status_code == 200 and "Thu hồi nhiệm vụ" in page.text and f'value="user:{ids["cv2"]}"' in page.text
    r = client.post(f"/tasks/{task}/reassign", data={"csrf_token": csrf_from(page.text),  # type: ignore[index]
                                                      "assignee": f"user:{ids['cv2']}", "reason": "Giao trực tiếp"})
    assert r.status_code == 303, r.text
    assert "Lý Văn Đức" in client.get(f"/tasks/{task}").text

    head = {"Authorization": f"Bearer {make_token(settings, 'truongphong')}"}
    r = client.post(f"/api/tasks/{task}/withdraw", json={"reason": "Không còn cần"}, headers=head)
    assert r.status_code in (403, 404)  # not the assigner (and no longer the handler)
    boss = {"Authorization": f"Bearer {make_token(settings, 'lanhdao')}"}
    r = client.post(f"/api/tasks/{task}/withdraw", json={"reason": "Văn bản đã bị thu hồi"}, headers=boss)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text
    r = client.post(f"/api/tasks/{task}/reassign", json={"assignee": {"user_id": ids["cv2"]}}, headers=boss)
    assert r.status_code == 409
    page = client.get(f"/tasks/{task}")
    assert "Đã thu hồi" in page.text and "Thu hồi nhiệm vụ" not in page.text
