"""A task whose assignee (chuyenvien) may post files that the leader who directed it (lanhdao) opens: the path the
security review used to run script as the chairman. Shared by the API tests and the Chromium test."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import quote

import httpx

from eoffice import identity
from eoffice.registers import local_date
from storage.db import Database, utcnow
from tests.eoffice.conftest import Org, make_org, make_pdf


async def setup_org(url: str) -> tuple[Org, dict[str, str]]:
    db = Database(url)
    try:
        org = await make_org(db)
        tokens = {}
        async with db.uow() as uow:
            for name, user in org.users.items():
                tokens[name] = await identity.create_token(uow, None, user)
            await uow.commit()
        return org, tokens
    finally:
        await db.dispose()


class Api:
    """Bearer-token calls for the named demo users, through any httpx-like client (TestClient or httpx.Client)."""

    def __init__(self, client: Any, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def upload(self, name: str, data: bytes, filename: str, content_type: str) -> int:
        r = self.client.post("/api/files", content=data, headers={**self.auth(name), "Content-Type": content_type,
                                                                  "X-Filename": quote(filename)})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def post(self, name: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.auth(name))

    def task_for_specialist(self, org: Org) -> int:
        """Clerk registers a document, the leader (lanhdao) directs it to unit KT, its head passes it to chuyenvien."""
        pdf = self.upload("vanthu", make_pdf(["Công văn về việc triển khai chính quyền điện tử"]), "cv.pdf",
                          "application/pdf")
        r = self.post("vanthu", "/api/documents/incoming", {
            "sender": "Ủy ban nhân dân thị xã Đông Triều", "notation": "77/UBND-VX", "date_issued": "2026-01-05",
            "doc_type": "cong_van", "summary": "Công văn về việc triển khai chính quyền điện tử",
            "signer": "Vũ Đức Thắng", "urgency": "khan", "upload_ids": [pdf]})
        assert r.status_code == 201, r.text
        doc = r.json()["document"]["id"]
        assert self.post("vanthu", f"/api/documents/{doc}/submit",
                         {"to_user_id": org["lanhdao"].id}).status_code == 201
        deadline = (local_date(utcnow()) + dt.timedelta(days=7)).isoformat()
        r = self.post("lanhdao", f"/api/documents/{doc}/direction", {
            "text": "Giao Phòng Kinh tế chủ trì tham mưu.", "main": {"unit_id": org.units["KT"].id},
            "deadline": deadline})
        assert r.status_code == 201, r.text
        r = self.post("truongphong", f"/api/tasks/{r.json()['tasks'][0]['id']}/pass-down",
                      {"main_user_id": org["chuyenvien"].id, "instruction": "Đồng chí Hà xử lý."})
        assert r.status_code == 201, r.text
        return int(r.json()["tasks"][0]["id"])

    def post_files(self, task: int, files: list[tuple[bytes, str, str]]) -> list[str]:
        """chuyenvien posts an update with ``files`` (data, name, declared type); their URLs in that order."""
        ids = [self.upload("chuyenvien", data, name, ctype) for data, name, ctype in files]
        r = self.post("chuyenvien", f"/api/tasks/{task}/updates",
                      {"text": "Báo cáo tiến độ kèm tệp", "progress": 50, "upload_ids": ids})
        assert r.status_code == 201, r.text
        by_name = {u["filename"]: u["file_url"] for u in r.json()["updates"] if u.get("file_url")}
        return [by_name[name] for _data, name, _ctype in files]


def wait_until(check: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)
