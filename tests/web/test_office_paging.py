"""The inbox and the task board page through long lists instead of cutting them off."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.testclient import TestClient

from eoffice import tasks
from eoffice.documents import register_incoming
from storage.blobs import open_blob_store
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.conftest import incoming_fields, make_org
from tests.web.conftest import login, run
from web.routes import office_pages
from web.routes.office_pages import BOARD_PAGE, INBOX_PAGE


async def _many(settings: Settings) -> None:
    db, blobs = Database(settings.database_url), open_blob_store(settings.blob_url)
    try:
        org = await make_org(db)
        async with db.uow() as uow:
            for i in range(INBOX_PAGE + 3):
                doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(i + 1))
                if i < 3:  # a few directed to the specialist: tasks on the board
                    await tasks.submit(uow, org["vanthu"], doc.id, org["lanhdao"].id)
                    await tasks.direct(uow, org["lanhdao"], doc.id, text="Phạm Thu Hà xử lý",
                                       main={"user_id": org["chuyenvien"].id},
                                       deadline=dt.date.today() + dt.timedelta(days=5))
            await uow.commit()
    finally:
        await blobs.close()
        await db.dispose()


def test_inbox_and_task_board_pages(client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    run(_many(settings))
    login(client, "vanthu")
    first = client.get("/documents")
    assert first.status_code == 200 and 'href="/documents?page=2"' in first.text and 'rel="prev"' not in first.text
    assert "(lần 23)" in first.text and "(lần 3)" not in first.text  # newest first
    second = client.get("/documents?page=2")
    assert "(lần 3)" in second.text and "(lần 1)" in second.text and 'rel="next"' not in second.text
    assert 'href="/documents"' in second.text  # back to page 1
    assert client.get("/documents?page=abc").status_code == 200

    client.cookies.clear()
    login(client, "chuyenvien")
    assert 'rel="next"' not in client.get("/tasks").text and BOARD_PAGE >= 3
    monkeypatch.setattr(office_pages, "BOARD_PAGE", 2)
    one, two = client.get("/tasks"), client.get("/tasks?page=2")
    shown = [[n for n in (1, 2, 3) if f"(lần {n})" in page.text] for page in (one, two)]
    assert 'href="/tasks?page=2"' in one.text and 'rel="next"' not in two.text
    assert sorted(shown[0] + shown[1]) == [1, 2, 3] and len(shown[0]) == 2
