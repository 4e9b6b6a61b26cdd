"""The typed API contract (web.contract) and the OpenAPI description built from it.

The served description is a valid OpenAPI 3.1 document; every write operation declares its body
and every success its content; and real answers, recorded while the API tests of each area run
their journeys through a real app, validate against the schemas declared for them, so the contract
cannot drift from what is served. A body that breaks the contract is the same Vietnamese 400 the
parsers give (``{"error": "invalid", "message": ..., "field": ...}``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec
from starlette.testclient import TestClient

from eoffice.registers import local_date
from storage.db import utcnow
from storage.settings import Settings
from tests.eoffice.conftest import make_pdf
from tests.meetings import test_api as meeting_api
from tests.meetings import test_voting_api as voting_api
from tests.meetings.conftest import World
from tests.meetings.conftest import world as world  # the meetings' fixture, for their journeys
from tests.web import test_accounts, test_notifications_web, test_task_take_back
from tests.web.conftest import replace, run
from tests.web.file_world import Api, setup_org
from web.app import create_app
from web.contract.core import WRITE_METHODS

# the answers' shapes do not depend on the database: one run, on SQLite
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class Recorder:
    """Every answer a client received, to check against the description afterwards."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, httpx.Response]] = []

    def attach(self, client: httpx.Client) -> httpx.Client:
        client.event_hooks = {**client.event_hooks, "response": [self.record]}
        return client

    def record(self, response: httpx.Response) -> None:
        response.read()
        self.calls.append((response.request.method, response.request.url.path, response))


@pytest.fixture
def doc(settings: Settings) -> dict[str, Any]:
    with TestClient(create_app(settings)) as c:
        r = c.get("/api/openapi.json")
    assert r.status_code == 200, r.text
    return r.json()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


class Contract:
    """Which operation a call was (the most specific path that matches) and its declared answer."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.routes = sorted(
            ((method, re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"), path, op)
             for method, path, op in _operations(doc)),
            key=lambda r: -len(re.sub(r"\{\w+\}", "", r[2])))

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for m, pattern, template, op in self.routes:
            if m == method and pattern.match(path):
                return template, op
        return None

    def check(self, method: str, path: str, response: httpx.Response) -> str | None:
        """The operation checked (``None``: not a JSON success); raises when the answer breaks its schema."""
        found = self.operation(method, path)
        assert found is not None, f"{method} {path} is not in the description"
        template, op = found
        if not 200 <= response.status_code < 300:
            return None
        declared = op["responses"].get(str(response.status_code))
        assert declared is not None, f"{method} {template} answered {response.status_code}, not declared"
        if response.status_code == 204:
            return None
        content = declared.get("content", {})
        ctype = response.headers.get("content-type", "").split(";")[0]
        if ctype != "application/json":
            assert ctype in content or "*/*" in content, f"{method} {template}: {ctype} not declared"
            return None
        schema = content["application/json"]["schema"]
        try:
            jsonschema.validate(response.json(), {**schema, "components": self.doc["components"]},
                                cls=jsonschema.Draft202012Validator)
        except jsonschema.ValidationError as exc:
            raise AssertionError(f"{method} {template} ({response.status_code}): {exc.message} at "
                                 f"{list(exc.absolute_path)}") from None
        return f"{method} {template}"


# ---- the description itself -------------------------------------------------------------------

def test_the_description_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate_spec(doc)
    assert doc["openapi"].startswith("3.1")
    assert len(doc["components"]["schemas"]) > 50


def test_every_write_declares_its_body_and_every_success_its_content(doc: dict[str, Any]) -> None:
    missing: list[str] = []
    count = 0
    for method, path, op in _operations(doc):
        count += 1
        if method in WRITE_METHODS:
            content = op.get("requestBody", {}).get("content", {})
            if not content or not all("schema" in c for c in content.values()):
                missing.append(f"{method} {path}: no request body schema")
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        if not successes:
            missing.append(f"{method} {path}: no success answer")
        for status, answer in successes.items():
            if status == "204":
                continue
            content = answer.get("content", {})
            if not content or not all("schema" in c for c in content.values()):
                missing.append(f"{method} {path} {status}: no content schema")
        for status, answer in op["responses"].items():
            if status.startswith(("4", "5")):
                assert answer.get("content", {}).get("application/json", {}).get("schema"), (method, path, status)
    assert count > 100, count
    assert not missing, "\n".join(missing)


def test_operation_ids_are_unique_and_schemas_are_referenced(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _m, _p, op in _operations(doc)]
    assert len(ids) == len(set(ids))
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(doc).replace("'", '"')))
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])


# ---- bodies that break the contract -------------------------------------------------------------

def test_a_body_that_breaks_the_contract_is_a_vietnamese_400(settings: Settings) -> None:
    _org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings)) as c:
        api = Api(c, tokens)
        cases = [
            ("vanthu", "/api/documents/incoming", {"sender": ["không phải chuỗi"]}, "sender"),
            ("vanthu", "/api/documents/incoming", {"upload_ids": "1,2"}, "upload_ids"),
            ("vanthu", "/api/documents/incoming", {"date_issued": "20/11/2026"}, "date_issued"),
            ("vanthu", "/api/documents/1/submit", {}, "to_user_id"),
            ("lanhdao", "/api/documents/1/direction", {"main": "Phòng Kinh tế"}, "main"),
            ("lanhdao", "/api/documents/1/direction", {"main": {"user_id": "hai"}}, "user_id"),
            ("vanthu", "/api/drafts", {"recipients": [3]}, "recipients"),
            ("vanthu", "/api/meetings", {"title": "Họp", "starts_at": "2026-12-01T08:00", "chair_id": 2**40},
             "chair_id"),
            ("vanthu", "/api/polls", {"meeting_id": 1, "options": "có, không"}, "options"),
            ("vanthu", "/api/tokens", {"expires_days": "mười"}, "expires_days"),
        ]
        for who, path, body, field in cases:
            r = api.post(who, path, body)
            assert r.status_code == 400, (path, body, r.status_code, r.text)
            answer = r.json()
            assert answer["error"] == "invalid" and answer["field"] == field, (path, answer)
            assert not answer["message"].isascii(), answer  # Vietnamese, never pydantic's English
        # the parsers' own messages are kept
        r = api.post("vanthu", "/api/documents/incoming", {"page_count": -1})
        assert r.json()["message"] == "Giá trị «page_count» phải nằm trong khoảng 0–2147483647."
        # an anonymous request is refused as such (no login, no CSRF token), whatever its body
        r = c.post("/api/documents/incoming", json={"sender": 1})
        assert r.status_code in (401, 403) and r.json()["error"] != "invalid", r.text


def test_what_the_fuzzer_found_once_bodies_were_declared(settings: Settings) -> None:
    """Schemathesis reached these once the bodies were in the description: each was a 500."""
    _org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings)) as c:
        api = Api(c, tokens)
        r = api.post("vanthu", "/api/meetings", {"starts_at": "2026-12-01T08:00"})  # no title
        assert r.status_code == 400 and r.json()["error"] == "invalid", r.text
        r = api.post("vanthu", "/api/polls", {"meeting_id": 1, "title": "Biểu quyết"})  # no method
        assert r.status_code in (400, 403, 404) and r.json()["error"] != "server_error", r.text
        r = api.post("vanthu", "/api/documents/incoming", {"sender": "Sở Nội vụ\x0c", "summary": "Tờ trình\x01 số 5",
                                                            "date_issued": "2026-01-05", "paper_only": True})
        assert r.status_code == 201, r.text
        r = c.get("/api/registers/export", params={"direction": "in", "format": "xlsx"}, headers=api.auth("vanthu"))
        assert r.status_code == 200 and r.content.startswith(b"PK"), r.text[:200]


# ---- real answers against their schemas ---------------------------------------------------------

def _office_journey(c: TestClient, api: Api, org: Any) -> None:
    """The e-office through its API: register, submit, direct, pass down, report, extend, complete;
    outgoing drafts; dossiers; search and statistics; tokens and accounts."""
    lanhdao, vanthu = api.auth("lanhdao"), api.auth("vanthu")
    for path in ("/api/me", "/api/eoffice/reference", "/api/documents", "/api/inbox", "/api/tasks",
                 "/api/drafts", "/api/dossiers", "/api/edxml/quarantine", "/api/edxml/unmatched", "/api/tokens"):
        assert c.get(path, headers=vanthu).status_code == 200, path
    task = api.task_for_specialist(org)
    [url] = api.post_files(task, [(make_pdf(["Báo cáo tiến độ"]), "bao-cao.pdf", "application/pdf")])
    assert c.get(url, headers=lanhdao).status_code == 200
    r = c.get(f"/api/tasks/{task}", headers=api.auth("chuyenvien"))
    doc = r.json()["task"]["document_id"]
    for path in (f"/api/documents/{doc}", f"/api/documents/{doc}/signatures", f"/api/documents/{doc}/edxml/timeline",
                 "/api/search?q=chinh quyen dien tu", "/api/tasks?scope=assigned_by_me", "/api/inbox"):
        assert c.get(path, headers=lanhdao).status_code == 200, path
    today = local_date(utcnow())
    r = c.get("/api/statistics", params={"from": (today - dt.timedelta(days=30)).isoformat(),
                                         "to": today.isoformat()}, headers=lanhdao)
    assert r.status_code == 200, r.text
    new_deadline = (today + dt.timedelta(days=20)).isoformat()
    r = api.post("chuyenvien", f"/api/tasks/{task}/extensions", {"new_deadline": new_deadline, "reason": "Chờ số liệu"})
    assert r.status_code == 201, r.text
    assert api.post("truongphong", f"/api/extensions/{r.json()['id']}/decision",
                    {"approve": True, "note": "Đồng ý"}).status_code == 200
    r = api.post("chuyenvien", f"/api/tasks/{task}/complete", {"result": "Đã tham mưu văn bản trả lời."})
    assert r.status_code == 200, r.text

    draft_file = api.upload("chuyenvien", make_pdf(["Dự thảo công văn trả lời"]), "du-thao.pdf", "application/pdf")
    r = api.post("chuyenvien", "/api/drafts", {"summary": "V/v báo cáo chuyển đổi số", "upload_id": draft_file,
                                                "recipients": [{"name": "Sở Thông tin và Truyền thông"}]})
    assert r.status_code == 201, r.text
    draft = r.json()["id"]
    assert c.get(f"/api/drafts/{draft}/history", headers=api.auth("chuyenvien")).status_code == 200
    assert api.post("chuyenvien", f"/api/drafts/{draft}/versions", {"note": "Sửa trích yếu",
                                                                    "summary": "V/v báo cáo"}).status_code == 201
    r = api.post("chuyenvien", f"/api/drafts/{draft}/send", {"approver_id": org["truongphong"].id})
    assert r.status_code == 201, r.text
    api.post("truongphong", f"/api/drafts/{draft}/return", {"comment": "Bổ sung số liệu"})

    r = api.post("vanthu", "/api/dossiers", {"title": "Hồ sơ chuyển đổi số năm 2026"})
    assert r.status_code == 201, r.text
    dossier = r.json()["id"]
    assert api.post("vanthu", f"/api/dossiers/{dossier}/items", {"document_id": doc}).status_code == 201
    assert c.get(f"/api/dossiers/{dossier}", headers=vanthu).status_code == 200
    api.post("vanthu", f"/api/dossiers/{dossier}/close", {"file_code": "01.VP", "retention": "10y"})

    r = api.post("vanthu", "/api/tokens", {"name": "Máy quét", "scope": "read", "expires_days": 30})
    assert r.status_code == 201, r.text
    admin = api.auth("admin")
    r = c.get("/api/users", headers=admin)
    assert r.status_code == 200, r.text
    assert c.get(f"/api/users/{org['vanthu'].id}/tokens", headers=admin).status_code == 200
    assert c.get("/api/openapi.json", headers=vanthu).status_code == 200


def _check_all(contract: Contract, recorder: Recorder) -> set[str]:
    checked: set[str] = set()
    for method, path, response in recorder.calls:
        if not path.startswith("/api/"):
            continue
        name = contract.check(method, path, response)
        if name:
            checked.add(name)
    return checked


def test_office_and_account_answers_match_their_schemas(settings: Settings, doc: dict[str, Any]) -> None:
    org, tokens = run(setup_org(settings.database_url))  # type: ignore[misc]
    recorder = Recorder()
    with TestClient(create_app(settings), follow_redirects=False) as c:
        recorder.attach(c)
        _office_journey(c, Api(c, tokens), org)
    checked = _check_all(Contract(doc), recorder)
    assert len(checked) >= 35, sorted(checked)
    for op in ("POST /api/documents/incoming", "POST /api/documents/{id}/direction", "GET /api/documents/{id}",
               "POST /api/tasks/{id}/complete", "POST /api/drafts", "GET /api/dossiers/{id}", "GET /api/statistics",
               "GET /api/users", "POST /api/tokens", "POST /api/files"):
        assert op in checked, op


def test_account_journeys_match_their_schemas(settings: Settings, doc: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    other_browser = test_accounts.browser
    monkeypatch.setattr(test_accounts, "browser", lambda app: recorder.attach(other_browser(app)))
    app_settings = replace(settings, ws_heartbeat_seconds=2.0)
    with TestClient(create_app(app_settings)) as c:
        recorder.attach(c)
        test_accounts.test_tokens_scope_expiry_list_and_revoke(c, app_settings)
    checked = _check_all(Contract(doc), recorder)
    for op in ("GET /api/tokens", "POST /api/tokens"):
        assert op in checked, (op, sorted(checked))


def test_take_back_journey_matches_its_schemas(settings: Settings, doc: dict[str, Any]) -> None:
    recorder = Recorder()
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        recorder.attach(c)
        test_task_take_back.test_reassign_from_the_page_and_withdraw_through_the_api(c, settings)
    assert "POST /api/tasks/{id}/withdraw" in _check_all(Contract(doc), recorder)


def test_notification_journeys_match_their_schemas(settings: Settings, doc: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    made = test_notifications_web.TestClient

    def recorded(*args: Any, **kwargs: Any) -> TestClient:
        return recorder.attach(made(*args, **kwargs))  # type: ignore[return-value]

    monkeypatch.setattr(test_notifications_web, "TestClient", recorded)
    test_notifications_web.test_api_list_read_and_read_all(settings)
    checked = _check_all(Contract(doc), recorder)
    for op in ("GET /api/notifications", "POST /api/notifications/{id}/read", "POST /api/notifications/read-all",
               "GET /api/notifications/preferences", "PUT /api/notifications/preferences"):
        assert op in checked, (op, sorted(checked))


async def test_meeting_and_voting_answers_match_their_schemas(settings: Settings, world: World,
                                                              doc: dict[str, Any]) -> None:
    recorder = Recorder()
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        recorder.attach(c)
        await meeting_api.test_meeting_through_the_api(c, world)
        await voting_api.test_poll_through_the_api(c, world)
    checked = _check_all(Contract(doc), recorder)
    assert len(checked) >= 25, sorted(checked)
    for op in ("POST /api/meetings", "GET /api/meetings/{meeting_id}", "POST /api/meetings/{meeting_id}/documents",
               "PUT /api/meetings/{meeting_id}/presenter", "POST /api/polls", "POST /api/polls/{poll_id}/votes",
               "GET /api/polls/{poll_id}"):
        assert op in checked, (op, sorted(checked))


def test_the_served_description_matches_the_check_used_here(doc: dict[str, Any]) -> None:
    """Sanity for the matcher above: a literal path wins over a parameter at the same place."""
    contract = Contract(doc)
    found = contract.operation("POST", "/api/meetings/3/items")
    assert found is not None and found[0] == "/api/meetings/{meeting_id}/items"
    found = contract.operation("POST", "/api/meetings/3/start")
    assert found is not None and found[0] == "/api/meetings/{meeting_id}/{action}"
