"""Files of outgoing-draft versions: linked from the draft page, downloadable by whoever may see
the draft, 404 for everybody else."""

from __future__ import annotations

from starlette.testclient import TestClient

from eoffice import outgoing
from storage.blobs import open_blob_store
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.conftest import make_org, make_pdf, upload
from tests.web.conftest import login, run

PDF = make_pdf(["Dự thảo Quyết định thành lập Tổ công tác chuyển đổi số"])


async def _draft(settings: Settings) -> tuple[int, int]:
    db, blobs = Database(settings.database_url), open_blob_store(settings.blob_url)
    try:
        org = await make_org(db)
        async with db.uow() as uow:
            up = await upload(uow, org["chuyenvien"], blobs, PDF, "Dự thảo QĐ tổ công tác.pdf")
            doc = await outgoing.create_draft(uow, org["chuyenvien"], blobs, doc_type="quyet_dinh",
                                              summary="Quyết định thành lập Tổ công tác chuyển đổi số", upload_id=up)
            await uow.commit()
        async with db.uow(readonly=True) as uow:
            version = (await outgoing.history(uow, org["chuyenvien"], doc.id))["versions"][0]
        return doc.id, version["id"]
    finally:
        await blobs.close()
        await db.dispose()


def test_draft_version_file_download(client: TestClient, settings: Settings) -> None:
    doc_id, version_id = run(_draft(settings))  # type: ignore[misc]
    url = f"/api/draft-versions/{version_id}/file"
    assert client.get(url).status_code in (401, 303)  # not signed in

    login(client, "chuyenvien")
    page = client.get(f"/outgoing/{doc_id}")
    assert page.status_code == 200 and f'href="{url}"' in page.text
    r = client.get(url)
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"
    assert "UTF-8''D%E1%BB%B1%20th%E1%BA%A3o" in r.headers["content-disposition"]
    assert client.get(f"/api/draft-versions/{version_id + 1000}/file").status_code == 404

    client.cookies.clear()
    login(client, "chuyenvien2")  # same unit, but the draft was not shared with them
    assert client.get(url).status_code == 404
