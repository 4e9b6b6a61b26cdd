"""Through the HTTP API: a crafted PDF attached to a document gets a 422 "quá phức tạp" for its page
within the time limit while another reader's page answers at once, and its text job is marked
failed; the server's own PDF workers run with the configured limits."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from eoffice import pdfsandbox
from storage.settings import Settings
from tests.eoffice.conftest import make_pdf
from tests.eoffice.hostile_pdfs import full_page_fills, nested_text
from tests.eoffice.test_api import _setup
from tests.web.conftest import run
from web.app import create_app

TIMEOUT = 3.0


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = dataclasses.replace(settings, pdf_timeout=TIMEOUT, pdf_extract_timeout=TIMEOUT, pdf_processes=2,
                                   upload_limit=4 * 1024 * 1024)
    _org, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    try:
        with TestClient(create_app(settings), base_url="http://testserver") as client:
            yield client, tokens
    finally:
        pdfsandbox.configure(pdfsandbox.Limits())


def test_a_crafted_pdf_is_refused_in_time_and_does_not_stall_other_readers(
        world: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = world
    auth = {"Authorization": f"Bearer {tokens['vanthu']}"}

    def upload(data: bytes, name: str) -> int:
        r = client.post("/api/files", content=data, headers={**auth, "Content-Type": "application/pdf",
                                                              "X-Filename": quote(name)})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def register(n: int, upload_ids: list[int]) -> dict[str, Any]:
        r = client.post("/api/documents/incoming", headers=auth, json={
            "sender": "Ủy ban nhân dân thị xã Đông Triều", "notation": f"{n}/UBND-VX", "date_issued": "2026-01-05",
            "doc_type": "cong_van", "summary": f"Công văn số {n} về chuyển đổi số", "signer": "Vũ Đức Thắng",
            "upload_ids": upload_ids})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    normal = register(1, [upload(make_pdf([f"Trang {i}: Ủy ban nhân dân huyện Đông Triều" for i in range(4)]),
                                 "bình thường.pdf")])
    hostile = register(2, [upload(full_page_fills(40), "tô kín.pdf"), upload(nested_text(7), "lồng nhau.pdf")])

    def detail(doc: dict[str, Any]) -> dict[str, Any]:
        return client.get(f"/api/documents/{doc['document']['id']}", headers=auth).json()  # type: ignore[no-any-return]

    normal_att = detail(normal)["attachments"][0]["id"]
    hostile_att = detail(hostile)["attachments"][0]["id"]
    assert client.get(f"/api/attachments/{normal_att}/pages/1.png?width=300", headers=auth).status_code == 200
    deadline = time.monotonic() + 30
    while len(pdfsandbox.pids()) < 2:  # both workers started with the server
        assert time.monotonic() < deadline
        time.sleep(0.05)

    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        attack = pool.submit(client.get, f"/api/attachments/{hostile_att}/pages/1.png?width=900", headers=auth)
        deadline = time.monotonic() + 10
        while pdfsandbox.busy() == 0 and not attack.done():  # until a worker has the crafted page
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for page in (2, 3):
            t = time.monotonic()
            r = client.get(f"/api/attachments/{normal_att}/pages/{page}.png?width=800", headers=auth)
            assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
            assert time.monotonic() - t < 2.0
        refused = attack.result(timeout=TIMEOUT + 20)
    assert refused.status_code == 422, refused.text
    assert "quá phức tạp" in refused.json()["message"] and time.monotonic() - started < TIMEOUT + 8

    deadline = time.monotonic() + 60  # the text jobs: the normal one done, the crafted ones marked failed
    while time.monotonic() < deadline:
        jobs = detail(hostile)["ingest_jobs"] + detail(normal)["ingest_jobs"]
        if all(j["status"] in ("done", "failed") for j in jobs):
            break
        time.sleep(0.1)
    assert detail(normal)["ingest_jobs"][0]["status"] == "done"
    failed = detail(hostile)["ingest_jobs"]
    assert [j["status"] for j in failed][1] == "failed" and "quá phức tạp" in failed[1]["error"], failed
