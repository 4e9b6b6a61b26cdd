"""Two installations exchange documents and their statuses (#16): two real ``eoffice serve`` processes A (Ủy ban
nhân dân tỉnh Quảng Ninh) and B (Ủy ban nhân dân thị xã Đông Triều), each with its own database and key, the keys
exchanged with ``eoffice exchange key`` and ``eoffice exchange peer add`` as the administrators would.

A issues a document addressed to B while B's address is still wrong (the peer is down: the package stays in A's
outbox and is retried), the administrator corrects it, B registers the document as incoming and status 01 comes
back to A; B directs it (03, 04) and finishes it (06), and A's timeline shows each. Then B sends one to A.
The inbox refuses bad signatures (401), unknown peers (403), old timestamps (401) and replayed request ids (409);
a package delivered twice is registered once."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from eoffice.demo import DEMO_PASSWORD
from eoffice.exchange_sign import H_SIGNATURE, Envelope, sign
from tests.conftest import free_port
from tests.e2e.conftest import _eoffice, server_env, start_server
from tests.eoffice.conftest import make_pdf
from tests.web.conftest import csrf_from

ROOT = Path(__file__).resolve().parents[2]
NAME_A, NAME_B = "Ủy ban nhân dân tỉnh Quảng Ninh", "Ủy ban nhân dân thị xã Đông Triều"
T = TypeVar("T")


@dataclass
class Side:
    url: str
    env: dict[str, str]
    secret: str
    tokens: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        r = subprocess.run([_eoffice(), *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip()

    def api(self, user: str) -> httpx.Client:
        if user not in self.tokens:
            self.tokens[user] = self.cli("token", "create", user, "--name", "kiểm thử liên thông").splitlines()[-1]
        return httpx.Client(base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {self.tokens[user]}"})


def until(what: str, check: Callable[[], T | None], within: float = 120.0) -> T:
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    base = tmp_path_factory.mktemp("exchange")
    b_users = [["user", "add", "dt.vanthu", "--name", "Đinh Thị Thu", "--unit", "DT", "--role", "clerk",
                "--password", DEMO_PASSWORD],
               ["user", "add", "dt.chuyenvien", "--name", "Lương Văn Đức", "--unit", "DT", "--role", "specialist",
                "--password", DEMO_PASSWORD]]
    made = []
    for name, steps in (("a", []), ("b", b_users)):
        extra = {"EOFFICE_SECRET_KEY": secrets.token_urlsafe(32), "EOFFICE_EXCHANGE_RETRY_SECONDS": "1",
                 "EOFFICE_EXCHANGE_MAX_BYTES": str(2 * 1024 * 1024)}
        made.append((start_server(base / name, env_extra=extra, steps=steps), base / name, extra))
    try:
        with ThreadPoolExecutor(2) as pool:  # both installations migrate, load the demo and start at once
            servers = list(pool.map(lambda m: next(m[0]), made))
        a, b = (Side(str(server), {**server_env(var), **extra}, extra["EOFFICE_SECRET_KEY"])
                for server, (_, var, extra) in zip(servers, made, strict=True))
        yield a, b
    finally:
        for gen, _, _ in made:
            gen.close()


@pytest.fixture(scope="module")
def peers(sides: tuple[Side, Side]) -> tuple[Side, Side]:
    a, b = sides
    key_a, key_b = a.cli("exchange", "key"), b.cli("exchange", "key")
    assert key_a != key_b and len(key_a) == 44
    dead = f"http://127.0.0.1:{free_port()}"  # B's address mistyped at first: nothing answers there
    a.cli("exchange", "peer", "add", "--agency", "UBND", "--organ", "DT", "--name", NAME_B, "--url", dead,
          "--key", key_b, "--clerk", "vanthu")
    b.cli("exchange", "peer", "add", "--agency", "DT", "--organ", "UBND", "--name", NAME_A, "--url", a.url,
          "--key", key_a, "--clerk", "dt.vanthu")
    assert "DT" in a.cli("exchange", "peer", "list")
    return a, b


def issue(side: Side, leader: str, clerk: str, summary: str, to_name: str, to_organ: str) -> dict[str, Any]:
    with side.api(leader) as api:
        pdf = make_pdf([summary, "Điều 1. Giao Văn phòng tổ chức triển khai."])
        up = api.post("/api/files", content=pdf, headers={"Content-Type": "application/pdf",
                                                          "X-Filename": "cong-van.pdf"})
        assert up.status_code == 201, up.text
        draft = api.post("/api/drafts", json={"doc_type": "cong_van", "summary": summary, "upload_id": up.json()["id"],
                                              "recipients": [{"name": to_name, "organ_id": to_organ}]})
        assert draft.status_code == 201, draft.text
        doc_id = draft.json()["id"]
        sent = api.post(f"/api/drafts/{doc_id}/send", json={"comment": "Ban hành"})
        assert sent.status_code == 201, sent.text
    with side.api(clerk) as api:
        issued = api.post(f"/api/drafts/{doc_id}/issue", json={"signer": "Trần Văn Hùng"})
        assert issued.status_code == 200, issued.text
        return dict(issued.json()["document"])


def statuses(side: Side, clerk: str, doc_id: int) -> list[tuple[str, str]]:
    with side.api(clerk) as api:
        r = api.get(f"/api/documents/{doc_id}/edxml/timeline")
        assert r.status_code == 200, r.text
        return [(e["direction"], e["code"]) for e in r.json()["status_events"]]


def items(side: Side, clerk: str, what: str) -> list[dict[str, Any]]:
    with side.api(clerk) as api:
        r = api.get(f"/api/exchange/{what}")
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


def test_two_servers_exchange_a_document_and_its_statuses_both_ways(peers: tuple[Side, Side]) -> None:
    a, b = peers
    summary = "Công văn về việc triển khai chính quyền điện tử năm 2027"
    doc = issue(a, "lanhdao", "vanthu", summary, NAME_B, "DT")

    # B is unreachable: A keeps the package and retries with a doubling back-off
    row = until("a failed attempt at A", lambda: next((r for r in items(a, "vanthu", "sent")
                                                      if r["document_id"] == doc["id"] and r["attempts"] >= 1
                                                      and r["last_error"]), None))
    assert row["sent_at"] is None and row["kind"] == "document" and row["idem_key"].endswith("#doc0")
    a.cli("exchange", "peer", "add", "--agency", "UBND", "--organ", "DT", "--name", NAME_B, "--url", b.url,
          "--key", b.cli("exchange", "key"), "--clerk", "vanthu")
    until("delivered from A", lambda: next((r for r in items(a, "vanthu", "sent")
                                            if r["id"] == row["id"] and r["sent_at"]), None))

    got = until("registered at B", lambda: next((r for r in items(b, "dt.vanthu", "received")
                                                 if r["result"] == "imported" and r["action"] == "registered"), None))
    with b.api("dt.vanthu") as api:
        incoming = api.get(f"/api/documents/{got['document_id']}").json()["document"]
    assert incoming["direction"] == "in" and incoming["summary"] == summary
    assert incoming["notation"] == doc["notation"] and incoming["sender"] == NAME_A and incoming["number"]
    until("status 01 back at A", lambda: ("in", "01") in statuses(a, "vanthu", doc["id"]))

    # B moves it: the clerk submits it to the leader, who directs it (03 and 04); the specialist finishes it (06)
    with b.api("dt.chuyenvien") as api:
        specialist = api.get("/api/me").json()["id"]
    with b.api("dongtrieu.lanhdao") as api:
        leader = api.get("/api/me").json()["id"]
    with b.api("dt.vanthu") as api:
        r = api.post(f"/api/documents/{got['document_id']}/submit", json={"to_user_id": leader, "note": "Kính trình"})
        assert r.status_code == 201, r.text
    with b.api("dongtrieu.lanhdao") as api:
        r = api.post(f"/api/documents/{got['document_id']}/direction",
                     json={"text": "Giao anh Đức chủ trì tham mưu.", "main": {"user_id": specialist}})
        assert r.status_code == 201, r.text
        task_id = r.json()["tasks"][0]["id"]
    until("statuses 03 and 04 at A", lambda: {("in", "03"), ("in", "04")} <= set(statuses(a, "vanthu", doc["id"])))
    with b.api("dt.chuyenvien") as api:
        r = api.post(f"/api/tasks/{task_id}/complete", json={"result": "Đã tham mưu xong, trình lãnh đạo."})
        assert r.status_code == 200, r.text
    until("status 06 at A", lambda: ("in", "06") in statuses(a, "vanthu", doc["id"]))
    assert statuses(b, "dt.vanthu", got["document_id"]) == [("out", "01"), ("out", "03"), ("out", "04"),
                                                           ("out", "06")]
    sent_row = next(r for r in items(a, "vanthu", "sent") if r["id"] == row["id"])
    assert [s["code"] for s in sent_row["statuses"]] == ["01", "03", "04", "06"]

    # delivered twice (the clerk re-sends it): registered once at B
    with a.api("vanthu") as api:
        again = api.post(f"/api/documents/{doc['id']}/exchange", json={"organ_id": "DT"})
        assert again.status_code == 409 and "Gửi lại" in again.json()["message"]  # queued once per peer
        assert api.post(f"/api/exchange/sent/{row['id']}/resend").status_code == 200
    until("duplicate answered by B", lambda: any(r["result"] == "duplicate" for r in items(b, "dt.vanthu",
                                                                                        "received")))
    registered = [r for r in items(b, "dt.vanthu", "received") if r["action"] == "registered"]
    assert {r["document_id"] for r in registered} == {got["document_id"]}

    # and the other way: B to A
    back = issue(b, "dongtrieu.lanhdao", "dt.vanthu", "Báo cáo kết quả triển khai chính quyền điện tử", NAME_A,
                 "UBND")
    at_a = until("registered at A", lambda: next((r for r in items(a, "vanthu", "received")
                                                  if r["action"] == "registered"), None))
    with a.api("vanthu") as api:
        assert api.get(f"/api/documents/{at_a['document_id']}").json()["document"]["notation"] == back["notation"]
    until("status 01 back at B", lambda: ("in", "01") in statuses(b, "dt.vanthu", back["id"]))

    # the clerk's page at A: what was sent (attempts, statuses back), what arrived; re-send with CSRF only
    web, html = clerk_page(a, "vanthu")
    with contextlib.closing(web):
        assert "Liên thông văn bản" in html and NAME_B in html and "Văn bản → " in html
        assert "01 Đã đến (tiếp nhận)" in html and "04 Đã phân công" in html
        assert "Đã tiếp nhận" in html and f"/documents/{at_a['document_id']}" in html
        assert web.post(f"/exchange/sent/{row['id']}/resend").status_code == 403  # no CSRF token
        r = web.post(f"/exchange/sent/{row['id']}/resend", data={"csrf_token": csrf_from(html)})
        assert r.status_code == 303 and r.headers["location"] == "/exchange?done=resent"
        assert "Đã xếp gói tin để gửi lại ngay." in web.get("/exchange?done=resent").text


def clerk_page(side: Side, username: str) -> tuple[httpx.Client, str]:
    """A browser-like session of ``username`` on the exchange page (login form, cookies, CSRF)."""
    web = httpx.Client(base_url=side.url, timeout=60, follow_redirects=False)
    form = web.get("/login")
    r = web.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": csrf_from(form.text)})
    assert r.status_code == 303, r.text
    page = web.get("/exchange")
    assert page.status_code == 200, page.text
    return web, page.text


def _post(side: Side, body: bytes, *, secret: str, organ: str = "UBND", to: str = "DT", request_id: str = "",
          timestamp: int | None = None, key: str = "") -> httpx.Response:
    env = Envelope(organ, to, int(time.time()) if timestamp is None else timestamp, request_id or uuid.uuid4().hex,
                   key or f"{uuid.uuid4()}#doc0")
    headers = {**env.headers(), H_SIGNATURE: sign(secret, "POST", "/api/exchange/inbox", env, body),
               "content-type": "application/xml"}
    return httpx.post(f"{side.url}/api/exchange/inbox", content=body, headers=headers, timeout=60)


def test_inbox_refuses_bad_signatures_unknown_peers_old_and_replayed_requests(peers: tuple[Side, Side]) -> None:
    a, b = peers
    body = "<edXML>gói tin hỏng</edXML>".encode()
    forged = _post(b, body, secret=secrets.token_urlsafe(32))  # signed by another key than A's
    assert forged.status_code == 401, forged.text
    assert "Chữ ký" in forged.json()["message"]
    assert _post(b, body, secret=a.secret, organ="000.00.00.H41").status_code == 403  # not a peer of DT
    assert _post(b, body, secret=a.secret, timestamp=int(time.time()) - 3600).status_code == 401
    unsigned = httpx.post(f"{b.url}/api/exchange/inbox", content=body, timeout=60)
    assert unsigned.status_code == 401

    # a well-signed package B cannot read: refused and quarantined, the reason and the file for the clerk
    request_id = uuid.uuid4().hex
    refused = _post(b, body, secret=a.secret, request_id=request_id)
    assert refused.status_code == 422, refused.text
    quarantine_id = refused.json()["quarantine_id"]
    assert _post(b, body, secret=a.secret, request_id=request_id).status_code == 409  # the same request again
    row = next(r for r in items(b, "dt.vanthu", "refused") if r["id"] == quarantine_id)
    assert row["message"] and row["problem"]
    with b.api("dt.vanthu") as api:
        f = api.get(f"/api/exchange/refused/{quarantine_id}/file")
        assert f.status_code == 200 and f.content == body
        assert f.headers["content-disposition"].startswith("attachment")
        again = api.post(f"/api/exchange/refused/{quarantine_id}/reimport")
        assert again.status_code == 422 and again.json()["quarantine_id"] != quarantine_id
    with b.api("dongtrieu.lanhdao") as api:  # the clerk's, not the leader's
        assert api.get(f"/api/exchange/refused/{quarantine_id}/file").status_code == 403

    web, html = clerk_page(b, "dt.vanthu")
    with contextlib.closing(web):
        assert "Bị từ chối (khu cách ly)" in html and f"/api/exchange/refused/{quarantine_id}/file" in html
        r = web.post(f"/exchange/refused/{quarantine_id}/reimport", data={"csrf_token": csrf_from(html)})
        assert r.status_code == 422 and "Gói tin vẫn bị từ chối" in r.text

    too_big = _post(b, b"<x>" + b"a" * (3 * 1024 * 1024) + b"</x>", secret=a.secret)
    assert too_big.status_code == 413
