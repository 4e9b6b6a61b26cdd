"""E-office pages through the ASGI test client, on SQLite and PostgreSQL: every page renders in
Vietnamese, forms post with CSRF and redirect, service errors are shown on the page, and a
confidential document appears on no page for someone without access."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from eoffice.registers import local_date
from storage.db import Database, utcnow
from storage.settings import Settings
from tests.eoffice.conftest import Org, make_org, make_pdf
from tests.web.conftest import csrf_from, login, run
from web.app import create_app

SENDER = "Ủy ban nhân dân thị xã Đông Triều"
SUMMARY = "Công văn về việc triển khai chính quyền điện tử"
SECRET_SUMMARY = "Kế hoạch bảo vệ bí mật nhà nước về phòng thủ dân sự"


async def _org(url: str) -> Org:
    db = Database(url)
    try:
        return await make_org(db)
    finally:
        await db.dispose()


class Browser:
    """A logged-in person over the app's one test client: their own cookie jar, swapped in for each
    request (one lifespan, one event loop, one ingest runner for everybody)."""

    def __init__(self, shared: TestClient, username: str) -> None:
        self.shared = shared
        self.jar = httpx.Cookies()
        with self:
            login(shared, username)
            self.csrf = csrf_from(shared.get("/documents").text)

    def __enter__(self) -> TestClient:
        self.shared.cookies = self.jar
        return self.shared

    def __exit__(self, *exc: object) -> None:
        self.jar = httpx.Cookies(self.shared.cookies)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        with self as c:
            return c.request(method, url, **kwargs)

    def get(self, url: str, status: int = 200) -> str:
        r = self.request("GET", url)
        assert r.status_code == status, (url, r.status_code, _text_of(r.text)[:2000])
        return r.text

    def post(self, url: str, data: dict[str, object], status: int = 303) -> tuple[str, str]:
        r = self.request("POST", url, data={**data, "csrf_token": self.csrf})
        assert r.status_code == status, (url, r.status_code, _text_of(r.text)[:3000])
        return r.headers.get("location", ""), r.text

    def upload(self, data: bytes, filename: str) -> int:
        r = self.request("POST", "/api/files", content=data, headers={
            "X-CSRF-Token": self.csrf, "X-Filename": quote(filename), "Content-Type": "application/pdf"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


def _text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, Org, Any]]:
    org: Org = run(_org(settings.database_url))  # type: ignore[assignment]
    people: dict[str, Browser] = {}
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as shared:

        def as_(name: str) -> Browser:
            if name not in people:
                people[name] = Browser(shared, name)
            return people[name]

        yield shared, org, as_


def _fields(**over: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "sender": SENDER, "notation": "123/UBND-VX", "date_issued": "2026-01-05", "doc_type": "cong_van",
        "summary": SUMMARY, "signer": "Vũ Đức Thắng", "urgency": "khan", "confidentiality": "thuong",
        "page_count": "", "due_date": "", "paper_only": "1"}
    fields.update(over)
    return fields


def _doc_id(location: str) -> int:
    match = re.match(r"/documents/(\d+)", location)
    assert match, location
    return int(match.group(1))


def _wait_ingest(b: Browser, doc_id: int) -> None:
    for _ in range(200):
        jobs = b.request("GET", f"/api/documents/{doc_id}").json()["ingest_jobs"]
        if all(j["status"] in ("done", "failed") for j in jobs):
            return
        time.sleep(0.05)
    raise AssertionError("text extraction did not finish")


def test_pages_render_in_vietnamese_with_nav(world: tuple[TestClient, Org, Any]) -> None:
    _app, _org, as_ = world
    clerk, leader, specialist = as_("vanthu"), as_("lanhdao"), as_("chuyenvien")
    for b in (clerk, leader, specialist):
        home = b.get("/")
        assert "Việc cần làm" in home and "Nhiệm vụ đang xử lý" in home
        for label in ("Văn bản", "Công việc", "Cuộc họp"):  # the top navigation: one link per area
            assert f">{label}</a>" in home
        for label in ("Tra cứu", "Thống kê"):  # reached from the documents area's own navigation
            assert f">{label}</a>" in b.get("/documents")
        assert "Văn bản chờ xử lý" in b.get("/documents")
        assert "Công việc" in b.get("/tasks")
        assert "Văn bản đi" in b.get("/outgoing")
        assert "Hồ sơ công việc" in b.get("/dossiers")
        assert "có dấu hay không dấu" in b.get("/search")
        assert "Thống kê" in b.get("/statistics")
    form = clerk.get("/documents/new")
    assert "Vào sổ văn bản đến" in form and 'name="csrf_token"' in form
    options = form[form.index('name="doc_type"'):]
    assert options.index("Công văn</option>") < options.index("Nghị quyết (NQ)")  # the most used first
    assert 'data-remember="doc_type"' in form and 'data-remember="urgency"' in form and "remember.js" in form
    for name in ("Quyết định (QĐ)", "Nghị quyết (NQ)", "Tờ trình (TTr)", "Công văn</option>", "Hỏa tốc",
                 "Thượng khẩn", "Tuyệt mật", "Tối mật"):
        assert name in form, name
    assert "Vào sổ văn bản đến" in clerk.get("/documents")  # the clerk's button
    assert "Tải XLSX" in clerk.get("/documents")
    specialist.get("/documents/new", 403)
    assert "Vào sổ văn bản đến" not in specialist.get("/documents")
    # not logged in: the pages send to the login page
    _app.cookies = httpx.Cookies()
    r = _app.get("/tasks")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_register_submit_direct_and_complete_through_the_pages(world: tuple[TestClient, Org, Any]) -> None:
    _app, org, as_ = world
    clerk, leader, specialist = as_("vanthu"), as_("lanhdao"), as_("chuyenvien")

    # errors: missing sender, a corrupt PDF — shown in Vietnamese on the form, nothing registered
    _loc, page = clerk.post("/documents/new", _fields(sender=""), status=400)
    assert "Cần nhập cơ quan ban hành." in page and 'aria-invalid="true"' in page
    # no file and not "paper only", or no issue date: refused, with the field marked
    _loc, page = clerk.post("/documents/new", _fields(paper_only=""), status=400)
    assert "Chỉ có bản giấy" in page and "Cần đính kèm tệp văn bản" in page
    _loc, page = clerk.post("/documents/new", _fields(date_issued=""), status=400)
    assert "Cần nhập ngày ban hành của văn bản." in page
    bad = clerk.upload(make_pdf()[:400], "hỏng.pdf")
    _loc, page = clerk.post("/documents/new", {**_fields(), "upload_ids": bad}, status=400)
    assert "«hỏng.pdf»" in page and "không phải PDF hợp lệ" in page
    assert SUMMARY in page  # the typed fields are kept
    locked = clerk.upload(make_pdf(password="bí-mật"), "có-mật-khẩu.pdf")
    _loc, page = clerk.post("/documents/new", {**_fields(), "upload_ids": locked}, status=400)
    assert "được bảo vệ bằng mật khẩu" in page
    assert "Chưa có văn bản đến nào" in clerk.get("/documents")

    pdf = clerk.upload(make_pdf(["Đề nghị các đơn vị triển khai chuyển đổi số cấp xã"] * 3), "cv-123.pdf")
    loc, _ = clerk.post("/documents/new", {**_fields(), "upload_ids": pdf})
    doc_id = _doc_id(loc)
    assert loc.endswith("?registered=1")
    page = clerk.get(loc)
    assert "Đã vào sổ văn bản đến: số đến 1/" in page and "Bước tiếp theo: trình lãnh đạo" in page
    assert "Số đến: 1/" in page and "cv-123.pdf" in page
    assert "Khẩn" in page and "05/01/2026" in page and "3 trang" in page
    assert f'data-document-id="{doc_id}"' in page and 'class="of-ingest"' in page
    _wait_ingest(clerk, doc_id)
    assert "Đã trích xuất nội dung" in clerk.get(f"/documents/{doc_id}")

    # a likely duplicate is flagged, and registered only on an explicit confirmation
    _loc, page = clerk.post("/documents/new", _fields(), status=409)
    assert "Có thể trùng văn bản đã vào sổ" in page and "Vẫn vào sổ" in page
    assert f'href="/documents/{doc_id}"' in page and 'name="confirm_duplicate" value="1"' in page
    loc, _ = clerk.post("/documents/new", {**_fields(), "confirm_duplicate": "1"})
    assert "Số đến: 2/" in clerk.get(loc)

    # the clerk's inbox lists both to submit; submitting without a leader is an error on the page
    inbox = clerk.get("/documents")
    assert "Đã vào sổ, chờ trình" in inbox and f'href="/documents/{doc_id}"' in inbox
    _loc, page = clerk.post(f"/documents/{doc_id}/submit", {"to_user_id": ""}, status=400)
    assert "Cần chọn lãnh đạo để trình." in page
    loc, _ = clerk.post(f"/documents/{doc_id}/submit", {"to_user_id": org["lanhdao"].id, "note": "Kính trình"})
    assert loc == f"/documents/{doc_id}?submitted=1"
    assert "Đã trình văn bản." in clerk.get(loc)

    # the leader sees it awaiting direction, and directs: main handler, collaborator, informed, deadline
    inbox = leader.get("/documents")
    assert "Trình tôi cho ý kiến chỉ đạo" in inbox and SUMMARY in inbox
    page = leader.get(f"/documents/{doc_id}")
    assert "Cho ý kiến chỉ đạo và giao việc" in page and "Phạm Thu Hà" in page
    deadline = local_date(utcnow()) + dt.timedelta(days=1)
    _loc, page = leader.post(f"/documents/{doc_id}/direction", {"text": "", "main": f"user:{org['chuyenvien'].id}"},
                             status=400)
    assert "Cần nhập ý kiến chỉ đạo hoặc bút phê trên văn bản." in page
    loc, _ = leader.post(f"/documents/{doc_id}/direction", {
        "text": "Giao chị Hà chủ trì tham mưu, báo cáo kết quả.", "main": f"user:{org['chuyenvien'].id}",
        "collaborators": [f"user:{org['chuyenvien2'].id}"], "informed": [f"unit:{org.units['VP'].id}"],
        "deadline": deadline.isoformat()})
    page = leader.get(loc)
    assert "Đã cho ý kiến chỉ đạo và giao việc." in page and "Giao chị Hà chủ trì" in page
    assert "Chủ trì" in page and "Phối hợp" in page and "Lý Văn Đức" in page
    assert deadline.strftime("%d/%m/%Y") in page and "Sắp đến hạn" in page

    # the specialist's board: the task, due soon, with the document's urgency
    board = specialist.get("/tasks")
    assert "Tôi chủ trì" in board and SUMMARY in board and 'data-deadline="due_soon"' in board
    assert "Khẩn" in board
    task_id = int(re.search(r'id="task-(\d+)"', specialist.get(f"/documents/{doc_id}")).group(1))  # type: ignore[union-attr]
    loc, _ = specialist.post(f"/tasks/{task_id}/progress", {"progress": "40", "text": "Đang tổng hợp ý kiến",
                                                            "next": f"/documents/{doc_id}#task-{task_id}"})
    assert loc == f"/documents/{doc_id}#task-{task_id}"
    page = specialist.get(f"/documents/{doc_id}")
    assert "Đang tổng hợp ý kiến" in page and "40%" in page
    _loc, page = specialist.post(f"/tasks/{task_id}/complete", {"result": ""}, status=400)
    assert "Cần nêu kết quả xử lý." in page
    specialist.post(f"/tasks/{task_id}/complete", {"result": "Đã có báo cáo số 45/BC-VP"})
    page = specialist.get(f"/tasks/{task_id}")
    assert "Hoàn thành" in page and "Đã có báo cáo số 45/BC-VP" in page
    assert "Đúng hạn" in page
    assert SUMMARY not in specialist.get("/tasks")  # done tasks leave the open board
    assert SUMMARY in specialist.get("/tasks?status=done")
    assert "Hoàn thành" in leader.get(f"/documents/{doc_id}")


def test_unit_task_pass_down_extension_and_return(world: tuple[TestClient, Org, Any]) -> None:
    _app, org, as_ = world
    clerk, leader, head, specialist = as_("vanthu"), as_("lanhdao"), as_("truongphong"), as_("chuyenvien")
    loc, _ = clerk.post("/documents/new", _fields(notation="7/STTTT-CĐS", urgency="hoa_toc"))
    doc_id = _doc_id(loc)
    clerk.post(f"/documents/{doc_id}/submit", {"to_user_id": org["lanhdao"].id})
    deadline = local_date(utcnow()) + dt.timedelta(days=10)
    leader.post(f"/documents/{doc_id}/direction", {"text": "Phòng Kinh tế chủ trì.",
                                                   "main": f"unit:{org.units['KT'].id}",
                                                   "deadline": deadline.isoformat()})
    page = head.get(f"/documents/{doc_id}")
    assert "Phòng Kinh tế" in page and "Giao lại cho chuyên viên" in page and "Hỏa tốc" in page
    unit_task = int(re.search(r'id="task-(\d+)"', page).group(1))  # type: ignore[union-attr]
    head.post(f"/tasks/{unit_task}/pass-down", {"main_user_id": org["chuyenvien"].id, "instruction": "Em Hà làm",
                                                "collaborator_ids": [org["chuyenvien2"].id]})
    page = specialist.get(f"/documents/{doc_id}")
    child = min(int(x) for x in re.findall(r'id="task-(\d+)"', page) if int(x) != unit_task)  # the main one
    assert "Em Hà làm" in page

    # extension: asked by the specialist, approved by the unit head who passed it down
    _loc, page = specialist.post(f"/tasks/{child}/extension", {"new_deadline": deadline.isoformat(), "reason": "x"},
                                 status=400)
    assert "Hạn mới phải sau hạn hiện tại." in page
    later = deadline + dt.timedelta(days=5)
    specialist.post(f"/tasks/{child}/extension", {"new_deadline": later.isoformat(), "reason": "Chờ số liệu"})
    page = head.get(f"/tasks/{child}")
    assert "Đề nghị gia hạn" in page and "Chờ số liệu" in page and "Đồng ý gia hạn" in page
    req_id = re.search(r'name="request_id" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    _loc, page = head.post(f"/tasks/{child}/extension-decision", {"request_id": req_id, "decision": "refuse"},
                           status=400)
    assert "Cần nêu lý do từ chối." in page
    head.post(f"/tasks/{child}/extension-decision", {"request_id": req_id, "decision": "approve"})
    assert later.strftime("%d/%m/%Y") in specialist.get(f"/tasks/{child}")

    # return with a reason (none: an error on the page)
    _loc, page = specialist.post(f"/tasks/{child}/return", {"reason": ""}, status=400)
    assert "Cần nêu lý do trả lại." in page
    specialist.post(f"/tasks/{child}/return", {"reason": "Không thuộc lĩnh vực phụ trách"})
    page = head.get(f"/tasks/{child}")
    assert "Đã trả lại" in page and "Không thuộc lĩnh vực phụ trách" in page


def test_confidential_document_is_on_no_page_for_others(world: tuple[TestClient, Org, Any]) -> None:
    _app, org, as_ = world
    clerk = as_("vanthu")
    loc, _ = clerk.post("/documents/new", _fields(notation="01/KH-BCH", confidentiality="mat", summary=SECRET_SUMMARY,
                                                  doc_type="ke_hoach"))
    secret = _doc_id(loc)
    page = clerk.get(loc)
    assert "Mật" in page and SECRET_SUMMARY in page
    clerk.post(f"/documents/{secret}/submit", {"to_user_id": org["lanhdao"].id})
    assert SECRET_SUMMARY in as_("lanhdao").get("/documents")
    for name in ("chuyenvien", "vanthu2", "admin", "truongphong", "stttt.vanthu"):
        b = as_(name)
        for url in ("/", "/documents", "/tasks", "/tasks?scope=assigned_by_me", "/outgoing", "/dossiers",
                    "/search?q=bi+mat+nha+nuoc", "/search?confidentiality=mat", "/search?doc_type=ke_hoach",
                    "/statistics"):
            r = b.request("GET", url)
            assert SECRET_SUMMARY not in r.text and "01/KH-BCH" not in r.text, (name, url)
        r = b.request("GET", f"/documents/{secret}")
        assert r.status_code == 404 and SECRET_SUMMARY not in r.text, name
        assert b.request("GET", f"/documents/{secret}/submit").status_code == 405
        r = b.request("POST", f"/documents/{secret}/submit",
                      data={"to_user_id": org["lanhdao"].id, "csrf_token": b.csrf})
        assert r.status_code == 404 and SECRET_SUMMARY not in r.text, name
    # the leader it was submitted to finds it by search, without diacritics
    assert SECRET_SUMMARY in as_("lanhdao").get("/search?q=bi+mat+nha+nuoc")


def test_search_outgoing_dossier_statistics(world: tuple[TestClient, Org, Any]) -> None:
    _app, org, as_ = world
    clerk, leader, head, specialist = as_("vanthu"), as_("lanhdao"), as_("truongphong"), as_("chuyenvien")
    loc, _ = clerk.post("/documents/new", _fields())
    doc_id = _doc_id(loc)
    for q in ("cong+van+trien+khai", "Công+văn+triển+khai", "123/UBND-VX"):
        assert SUMMARY in clerk.get(f"/search?q={q}"), q
    assert SUMMARY not in clerk.get("/search?q=cong+van&direction=out")
    assert "Không tìm thấy văn bản nào phù hợp." in clerk.get("/search?q=khong+co+gi+ca")
    assert "phải là một ngày" in clerk.get("/search?from=xyz", status=400)

    # outgoing: draft -> unit head -> leader -> clerk issues with a number
    _loc, page = specialist.post("/outgoing", {"doc_type": "bao_cao", "summary": ""}, status=400)
    assert "Cần nhập trích yếu nội dung." in page
    loc, _ = specialist.post("/outgoing", {"doc_type": "bao_cao", "summary": "Báo cáo kết quả chuyển đổi số",
                                           "recipient_units": [org.units["DT"].id], "recipient_names": "Bộ Nội vụ"})
    draft = int(loc.rsplit("/", 1)[1])
    page = specialist.get(loc)
    assert "Dự thảo" in page and "Bộ Nội vụ" in page and "Ủy ban nhân dân thị xã Đông Triều" in page
    specialist.post(f"/outgoing/{draft}/send", {"approver_id": org["truongphong"].id})
    head.post(f"/outgoing/{draft}/decision", {"decision": "approve", "forward_to": org["lanhdao"].id})
    _loc, page = leader.post(f"/outgoing/{draft}/decision", {"decision": "return", "comment": ""}, status=400)
    assert "Cần nêu ý kiến khi trả lại dự thảo." in page
    leader.post(f"/outgoing/{draft}/decision", {"decision": "approve", "comment": "Đồng ý"})
    assert "Cấp số và phát hành" in clerk.get(f"/outgoing/{draft}")
    clerk.post(f"/outgoing/{draft}/issue", {"signer": "Trần Văn Hùng"})
    page = clerk.get(f"/outgoing/{draft}?ok=issued")
    assert "Đã cấp số và phát hành văn bản." in page and "1/BC-UBND" in page
    assert "1/BC-UBND" in clerk.get("/outgoing")

    # dossier: open, file the incoming document, close with a code and retention
    _loc, page = specialist.post("/dossiers", {"title": ""}, status=400)
    assert "Cần nhập tiêu đề hồ sơ." in page
    clerk.post(f"/documents/{doc_id}/submit", {"to_user_id": org["lanhdao"].id})
    leader.post(f"/documents/{doc_id}/direction", {"text": "Chị Hà xử lý.", "main": f"user:{org['chuyenvien'].id}"})
    loc, _ = specialist.post("/dossiers", {"title": "Hồ sơ chuyển đổi số năm 2026", "year": "2026"})
    dossier = int(loc.rsplit("/", 1)[1])
    assert "Đưa vào hồ sơ" in specialist.get(f"/documents/{doc_id}")
    specialist.post(f"/documents/{doc_id}/file", {"dossier_id": dossier})
    page = specialist.get(f"/dossiers/{dossier}")
    assert SUMMARY in page and "Vĩnh viễn" in page
    specialist.post(f"/dossiers/{dossier}/close", {"file_code": "01.VP", "retention": "10"})
    page = specialist.get(f"/dossiers/{dossier}?closed=1")
    assert "Đã đóng" in page and "01.VP" in page and "10 năm" in page

    # statistics: charts' data and table; a specialist sees only their own figures
    page = leader.get("/statistics?level=unit")
    assert 'id="chart-status"' in page and 'id="stats-data"' in page and "Tỷ lệ đúng hạn" in page
    assert "Sổ đến XLSX" in page
    assert "Phạm Thu Hà" in leader.get("/statistics?level=person")
    page = specialist.get("/statistics")
    assert "Cơ quan</option>" not in page
    page = specialist.get("/statistics?level=agency", status=403)
    assert "Chỉ lãnh đạo, văn thư xem thống kê" in page
    r = clerk.request("GET", f"/api/registers/export?direction=in&year={local_date(utcnow()).year}&format=csv")
    assert r.status_code == 200 and SENDER in r.content.decode("utf-8-sig")


def test_home_page_shows_my_meetings(world: tuple[TestClient, Org, Any]) -> None:
    """A delegate finds the meeting on the home page: invited ones as 'Sắp họp', the one going on first and
    straight into its room; people not invited see none of it."""
    _app, org, as_ = world
    clerk, chair, member, outsider = as_("vanthu"), as_("lanhdao"), as_("truongphong"), as_("chuyenvien2")
    empty = member.get("/")
    assert "Cuộc họp của bạn" in empty and "Không có cuộc họp nào đang diễn ra hoặc sắp tới." in empty

    def api(b: Browser, path: str, body: dict[str, object] | None = None) -> dict[str, Any]:
        r = b.request("POST", path, json=body or {}, headers={"X-CSRF-Token": b.csrf})
        assert r.status_code in (200, 201), (path, r.text)
        return r.json()

    ids = []
    for title, start in (("Họp giao ban Văn phòng Ủy ban nhân dân tỉnh", "2026-12-03T08:00"),
                         ("Phiên họp thường kỳ tháng 12 về chuyển đổi số", "2026-12-01T14:00")):
        m = api(clerk, "/api/meetings", {"title": title, "starts_at": start, "place": "Phòng họp số 1",
                                         "chair_id": org["lanhdao"].id, "secretary_id": org["chuyenvien"].id})
        api(clerk, f"/api/meetings/{m['id']}/participants", {"user_id": org["truongphong"].id})
        ids.append(m["id"])
    draft_only = member.get("/")  # not invited yet: drafts are the organisers' business
    assert "Họp giao ban" not in draft_only

    for mid in ids:
        api(clerk, f"/api/meetings/{mid}/invite")
    text = _text_of(member.get("/"))
    first, second = text.index("Phiên họp thường kỳ tháng 12"), text.index("Họp giao ban Văn phòng")
    assert first < second, "the sooner meeting comes first"
    assert "Sắp họp" in text and "01/12/2026" in text

    api(chair, f"/api/meetings/{ids[0]}/start")  # the later one starts early: it goes on top, into the room
    html = member.get("/")
    text = _text_of(html)
    assert text.index("Đang họp") < text.index("Họp giao ban Văn phòng") < text.index("Phiên họp thường kỳ")
    assert f'href="/meetings/{ids[0]}/room"' in html and f'href="/meetings/{ids[1]}"' in html
    assert "Họp giao ban" not in outsider.get("/")


def test_the_clerk_corrects_and_voids_from_the_document_page(world: tuple[TestClient, Org, Any]) -> None:
    _app, _org, as_ = world
    clerk, leader = as_("vanthu"), as_("lanhdao")
    loc, _ = clerk.post("/documents/new", _fields(notation="9/UBND-VX", doc_type="to_trinh"))
    doc_id = _doc_id(loc)
    page = clerk.get(f"/documents/{doc_id}")
    assert 'id="correct-form"' in page and 'id="void-form"' in page
    leader.post(f"/documents/{doc_id}/correct", {"summary": "Khác"}, status=403)  # not a clerk
    leader.post(f"/documents/{doc_id}/void", {"reason": "Nhầm"}, status=403)

    clerk.post(f"/documents/{doc_id}/correct", {"doc_type": "cong_van", "date_issued": "05/01/2026",
                                                "reason": "Nhầm loại văn bản"})
    page = clerk.get(f"/documents/{doc_id}?corrected=1")
    assert "Đã đính chính thông tin văn bản." in page and "Lịch sử đính chính" in page
    assert "Loại văn bản" in page and "«Tờ trình» → «Công văn»" in page and "Nhầm loại văn bản" in page

    _loc, page = clerk.post(f"/documents/{doc_id}/void", {"reason": ""}, status=400)
    assert "Cần nêu lý do hủy vào sổ." in page
    clerk.post(f"/documents/{doc_id}/void", {"reason": "Vào sổ nhầm"})
    page = clerk.get(f"/documents/{doc_id}")
    assert 'id="doc-voided"' in page and "Vào sổ nhầm" in page and 'id="correct-form"' not in page
