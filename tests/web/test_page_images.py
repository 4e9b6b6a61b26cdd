"""Page images of e-office attachments: rendered once and then served from the shared page cache
(eoffice.pdfpages), with private HTTP caching (ETag, 304), and never handed to a reader who may not
see the document, even right after an authorised reader warmed the cache."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from eoffice import documents, pdfpages, pdfsandbox
from storage.blobs import open_blob_store
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.conftest import incoming_fields, make_org, make_pdf, upload
from tests.web.conftest import make_token, run
from web.app import create_app

PDF = make_pdf([f"Trang {n}: Ủy ban nhân dân huyện Đông Triều triển khai chính quyền điện tử" for n in range(1, 4)])


async def _secret_document(settings: Settings) -> int:
    """A confidential (mật) incoming document with a 3-page PDF; only its registering clerk sees it."""
    db, blobs = Database(settings.database_url), open_blob_store(settings.blob_url)
    try:
        org = await make_org(db)
        async with db.uow() as uow:
            up = await upload(uow, org["vanthu"], blobs, PDF, "cong-van-mat.pdf")
            doc, _jobs = await documents.register_incoming(uow, org["vanthu"], blobs, upload_ids=[up],
                                                           **incoming_fields(7, confidentiality="mat"))
            await uow.commit()
        async with db.uow(readonly=True) as uow:
            (att,) = await documents.attachments_of(uow, doc)
            return att.id
    finally:
        await blobs.close()
        await db.dispose()


class As:
    """Requests of one user (bearer token) through the shared test client."""

    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client, self.token = client, token

    def get(self, url: str, headers: dict[str, str] | None = None) -> Any:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.get(url, headers={**auth, **(headers or {})})


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[As, As, As, int]]:
    pdfpages.clear_cache()
    att = int(run(_secret_document(settings)))  # type: ignore[call-overload]
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as client:
        # vanthu2: a clerk of the same agency, who sees its ordinary register but not its mật documents
        yield (As(client, make_token(settings, "vanthu")), As(client, make_token(settings, "vanthu2")),
               As(client, None), att)
    pdfpages.clear_cache()


def test_cached_page_private_etag_and_no_leak(world: tuple[As, As, As, int],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clerk, other, anonymous, att = world
    url = f"/api/attachments/{att}/pages/2.png?width=600"
    threads: list[str] = []  # what was rendered (in a PDF worker process)
    real = pdfpages.with_doc

    async def spy(*args: Any) -> Any:
        threads.append(args[2].__name__)
        return await real(*args)

    monkeypatch.setattr(pdfpages, "with_doc", spy)

    t0 = time.perf_counter()
    first = clerk.get(url)
    t_first = time.perf_counter() - t0
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
    assert first.headers["content-type"] == "image/png"
    assert first.headers["cache-control"] == "private, no-cache"
    tag = first.headers["etag"]
    assert tag.startswith('"p-')
    t0 = time.perf_counter()
    second = clerk.get(url)
    t_second = time.perf_counter() - t0
    assert second.content == first.content and second.headers["etag"] == tag
    assert threads == ["render_page"] and pdfsandbox.pids()  # rendered once, in a PDF worker process
    assert os.getpid() not in pdfsandbox.pids()
    info = pdfpages.cache_info()
    assert (info.misses, info.hits, info.items) == (1, 1, 1)
    print(f"page image: first {t_first * 1000:.1f} ms, cached {t_second * 1000:.1f} ms")

    # the browser revalidates: 304 without a body, and without rendering
    again = clerk.get(url, headers={"If-None-Match": f'"other", W/{tag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert clerk.get(url, headers={"If-None-Match": '"p-something-else"'}).status_code == 200
    assert clerk.get(f"/api/attachments/{att}/pages/2.png?width=601").headers["etag"] != tag

    # right after the cache was warmed, a reader without access gets nothing: no image, no 304
    before = pdfpages.cache_info()
    assert before.items == 2 and len(threads) == 2
    for headers in ({}, {"If-None-Match": tag}, {"If-None-Match": "*"}):
        r = other.get(url, headers=headers)
        assert r.status_code == 404 and b"PNG" not in r.content, headers
        assert "etag" not in r.headers
    assert anonymous.get(url).status_code == 401
    assert pdfpages.cache_info() == before  # the refused requests did not even reach the cache

    bad = clerk.get(f"/api/attachments/{att}/pages/9.png")
    assert bad.status_code == 400 and "không có trang 9" in bad.text, bad.text
