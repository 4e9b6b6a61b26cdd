"""Calendars (issue #21) over a real app, on SQLite and PostgreSQL: a person's week and month of meetings,
scheduling conflicts (a warning), the leaders' weekly work calendar (draft, approve, publish, adjust after
publishing, the page without login), and the iCalendar feeds at secret URLs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from eoffice.audit import AuditEntry
from storage.settings import Settings
from tests.meetings.conftest import World
from tests.meetings.test_api import bearer
from web.app import create_app

HN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def app_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


def next_monday() -> dt.date:
    """Next week's Monday in Hà Nội: inside every feed's window whatever the day the tests run."""
    today = dt.datetime.now(HN).date()
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)


def week_of(day: dt.date) -> str:
    return day.strftime("%G-W%V")


def at(day: dt.date, hour: int, minute: int = 0) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def meeting(c: TestClient, org: dict[str, str], title: str, starts: str, ends: str, *, chair: int | None,
            invite: tuple[int, ...] | list[int] = (), send: bool = True, confidential: bool = False) -> dict[str, Any]:
    r = c.post("/api/meetings", json={"title": title, "starts_at": starts, "ends_at": ends, "chair_id": chair,
                                      "place": "Phòng họp số 2, trụ sở UBND tỉnh"}, headers=org)
    assert r.status_code == 201, r.text
    m = r.json()
    for uid in invite:
        added = c.post(f"/api/meetings/{m['id']}/participants", json={"user_id": uid}, headers=org)
        assert added.status_code == 201, added.text
    if confidential:
        assert c.post(f"/api/meetings/{m['id']}/items", json={"title": "Công tác cán bộ", "confidential": True},
                      headers=org).status_code == 201
    if send:
        assert c.post(f"/api/meetings/{m['id']}/invite", headers=org).status_code == 200
    return m


def titles(day: dict[str, Any]) -> list[str]:
    return [m["title"] for m in day["meetings"]]


async def test_week_and_month_show_my_meetings_and_not_others(app_client: TestClient, world: World) -> None:
    c = app_client
    org, member, member2 = [await bearer(world, k) for k in ("organiser", "member", "member2")]
    monday = next_monday()
    mine = meeting(c, org, "Họp giao ban lãnh đạo UBND tỉnh", at(monday, 9), at(monday, 11), chair=world.chair.id,
                   invite=[world.member.id])
    other = meeting(c, org, "Họp Sở Thông tin và Truyền thông về chuyển đổi số", at(monday + dt.timedelta(days=1), 14),
                    at(monday + dt.timedelta(days=1), 16), chair=world.district.id, invite=[world.member2.id])
    meeting(c, org, "Dự thảo chưa gửi giấy mời", at(monday, 15), at(monday, 16), chair=world.chair.id,
            invite=[world.member.id], send=False)

    r = c.get("/api/calendar", params={"week": week_of(monday)}, headers=member)
    assert r.status_code == 200, r.text
    week = r.json()
    assert [d["weekday"] for d in week["days"]] == ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy",
                                                     "Chủ nhật"]
    assert week["days"][0]["date"] == monday.isoformat()
    assert titles(week["days"][0]) == ["Họp giao ban lãnh đạo UBND tỉnh"]  # not the draft: not sent to them yet
    assert week["days"][0]["meetings"][0]["time"] == "09:00"
    assert all(titles(d) == [] for d in week["days"][1:])  # the other meeting is not theirs
    assert week["next"] == f"week={week_of(monday + dt.timedelta(days=7))}"

    theirs = c.get("/api/calendar", params={"week": week_of(monday)}, headers=member2).json()
    assert titles(theirs["days"][1]) == [other["title"]]
    assert all(mine["title"] not in titles(d) for d in theirs["days"])

    month = c.get("/api/calendar", params={"view": "month", "year": monday.year, "month": monday.month},
                  headers=member).json()
    assert month["from"] == monday.replace(day=1).isoformat()
    assert [m["id"] for m in month["meetings"]] == [mine["id"]]

    page = c.get("/calendar", params={"week": week_of(monday)}, headers=member)
    assert page.status_code == 200
    assert "Họp giao ban lãnh đạo UBND tỉnh" in page.text and other["title"] not in page.text
    assert "Chủ nhật" in page.text and "Tuần sau" in page.text and "<script>" not in page.text
    page = c.get("/calendar/month", params={"year": monday.year, "month": monday.month}, headers=member)
    assert page.status_code == 200
    assert "Họp giao ban lãnh đạo UBND tỉnh" in page.text and f"Tháng {monday.month} năm {monday.year}" in page.text
    assert other["title"] not in c.get("/calendar/month", params={"year": monday.year, "month": monday.month},
                                       headers=member).text
    assert c.get("/calendar").status_code in (302, 303, 307)  # pages ask to log in


async def test_a_leader_already_in_a_meeting_is_a_warning(app_client: TestClient, world: World) -> None:
    c = app_client
    org = await bearer(world, "organiser")
    monday = next_monday()
    first = meeting(c, org, "Tiếp công dân định kỳ", at(monday, 9), at(monday, 11), chair=world.chair.id,
                    invite=[world.member.id])
    r = c.post("/api/meetings", json={"title": "Họp Ban Chỉ đạo chuyển đổi số", "starts_at": at(monday, 10),
                                      "ends_at": at(monday, 12), "chair_id": world.chair.id}, headers=org)
    assert r.status_code == 201  # a warning, not a refusal
    second = r.json()
    (clash,) = second["conflicts"]
    assert clash["user_id"] == world.chair.id and clash["meeting_id"] == first["id"]
    assert "Trần Văn Hùng" in clash["message"] and "09:00" in clash["message"]
    r = c.post(f"/api/meetings/{second['id']}/participants", json={"user_id": world.member.id}, headers=org)
    assert r.status_code == 201
    assert [x["meeting_id"] for x in r.json()["conflicts"]] == [first["id"]]
    r = c.post(f"/api/meetings/{second['id']}/participants", json={"user_id": world.secretary.id}, headers=org)
    assert r.json()["conflicts"] == []  # not a leader
    page = c.get(f"/meetings/{second['id']}", headers=org)
    assert "Trùng lịch" in page.text and "Tiếp công dân định kỳ" in page.text
    later = c.post("/api/meetings", json={"title": "Làm việc với Sở Tài chính", "starts_at": at(monday, 14),
                                          "ends_at": at(monday, 15), "chair_id": world.chair.id}, headers=org)
    assert later.json()["conflicts"] == []
    moved = c.patch(f"/api/meetings/{later.json()['id']}", json={"starts_at": at(monday, 10, 30)}, headers=org)
    assert moved.status_code == 200 and [x["meeting_id"] for x in moved.json()["conflicts"]] == [first["id"]]


async def audit_count(world: World, action: str) -> int:
    async with world.db.uow(readonly=True) as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(AuditEntry)
                                            .where(AuditEntry.action == action)) or 0)


async def test_work_calendar_drafted_approved_published_and_adjusted(app_client: TestClient, world: World) -> None:
    c = app_client
    org, chair, member, member2, outsider = [await bearer(world, k) for k in
                                              ("organiser", "chair", "member", "member2", "outsider")]
    monday = next_monday()
    week = week_of(monday)
    meeting(c, org, "Họp UBND tỉnh thường kỳ", at(monday, 8), at(monday, 11), chair=world.chair.id)
    meeting(c, org, "Họp về nhân sự", at(monday + dt.timedelta(days=2), 14), at(monday + dt.timedelta(days=2), 16),
            chair=world.chair.id, confidential=True)
    entry = {"starts_at": at(monday + dt.timedelta(days=1), 8), "ends_at": at(monday + dt.timedelta(days=1), 11),
             "leader_ids": [world.chair.id], "content": "Kiểm tra tiến độ dự án đường ven biển Hạ Long – Cẩm Phả",
             "place": "Thành phố Cẩm Phả", "participants": "Sở Giao thông vận tải, Sở Xây dựng",
             "preparing_unit": "Văn phòng UBND tỉnh"}
    assert c.post("/api/work-calendar/entries", json=entry, headers=outsider).status_code == 403
    assert c.post("/api/work-calendar/entries", json=entry, headers=chair).status_code == 403
    bad = c.post("/api/work-calendar/entries", json={**entry, "leader_ids": [world.secretary.id]}, headers=org)
    assert bad.status_code == 400 and "lãnh đạo" in bad.json()["message"]
    r = c.post("/api/work-calendar/entries", json=entry, headers=org)
    assert r.status_code == 201, r.text
    entry_id = r.json()["id"]

    draft = c.get("/api/work-calendar", params={"week": week}, headers=org).json()
    assert draft["state"] == "draft" and draft["visible"]
    tuesday = [i for i in draft["days"][1]["items"]]
    assert [i["kind"] for i in tuesday] == ["entry"] and tuesday[0]["leaders"] == ["Trần Văn Hùng"]
    assert [i["title"] for i in draft["days"][0]["items"]] == ["Họp UBND tỉnh thường kỳ"]  # by itself
    assert [i["title"] for i in draft["days"][2]["items"]] == ["Cuộc họp (mật)"]
    seen = c.get("/api/work-calendar", params={"week": week}, headers=outsider).json()
    assert not seen["visible"] and seen["days"][1]["items"] == []  # a draft is the office's and the leaders'

    week_id = draft["id"]
    for who in (org, outsider, member2):
        assert c.post(f"/api/work-calendar/weeks/{week_id}/approve", json={}, headers=who).status_code == 403
    assert c.post(f"/api/work-calendar/weeks/{week_id}/publish", json={}, headers=org).status_code == 409
    r = c.post(f"/api/work-calendar/weeks/{week_id}/approve", json={}, headers=member)
    assert r.status_code == 200 and r.json()["state"] == "approved"
    # a change before publishing: the leader approved another text, so it goes back to the draft
    extra = c.post("/api/work-calendar/entries", headers=org, json={
        **entry, "starts_at": at(monday + dt.timedelta(days=3), 15), "ends_at": None, "content": "Dự thảo bổ sung"})
    assert extra.status_code == 201 and not extra.json()["adjusted"]
    assert c.get("/api/work-calendar", params={"week": week}, headers=org).json()["state"] == "draft"
    assert c.delete(f"/api/work-calendar/entries/{extra.json()['id']}", headers=org).status_code == 200
    assert c.get("/api/work-calendar", params={"week": week}, headers=org).json()["days"][3]["items"] == []
    assert c.post(f"/api/work-calendar/weeks/{week_id}/approve", json={}, headers=chair).status_code == 200
    assert c.post(f"/api/work-calendar/weeks/{week_id}/publish", json={"public": True},
                  headers=outsider).status_code == 403
    r = c.post(f"/api/work-calendar/weeks/{week_id}/publish", json={"public": True}, headers=org)
    assert r.status_code == 200 and r.json()["state"] == "published" and r.json()["public"]

    published = c.get("/api/work-calendar", params={"week": week}, headers=outsider).json()
    assert published["visible"] and published["days"][1]["items"][0]["content"] == entry["content"]
    assert not published["days"][1]["items"][0]["adjusted"]

    r = c.patch(f"/api/work-calendar/entries/{entry_id}", json={"place": "Thị xã Quảng Yên",
                                                                "starts_at": at(monday + dt.timedelta(days=1), 14),
                                                                "ends_at": at(monday + dt.timedelta(days=1), 16)},
                headers=org)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["adjusted"]
    assert changed["adjustment"].startswith("Điều chỉnh:")
    assert "địa điểm: Thành phố Cẩm Phả → Thị xã Quảng Yên" in changed["adjustment"]
    assert "08:00" in changed["adjustment"] and "14:00" in changed["adjustment"]
    after = c.get("/api/work-calendar", params={"week": week}, headers=outsider).json()
    assert after["state"] == "published" and after["revision"] == 1
    assert after["days"][1]["items"][0]["time"] == "14:00"
    assert c.delete(f"/api/work-calendar/entries/{entry_id}", headers=outsider).status_code == 403
    late = c.post("/api/work-calendar/entries", headers=org, json={
        **entry, "starts_at": at(monday + dt.timedelta(days=4), 8), "ends_at": None,
        "content": "Tiếp Đoàn công tác của Bộ Nội vụ", "leader_ids": [world.member.id]})
    assert late.status_code == 201 and late.json()["adjusted"]
    assert late.json()["adjustment"] == "Điều chỉnh: bổ sung sau khi ban hành."
    assert c.delete(f"/api/work-calendar/entries/{late.json()['id']}", headers=org).status_code == 200
    friday = c.get("/api/work-calendar", params={"week": week}, headers=outsider).json()["days"][4]["items"]
    assert [(i["content"], i["cancelled"]) for i in friday] == [("Tiếp Đoàn công tác của Bộ Nội vụ", True)]
    assert friday[0]["adjustment"].endswith("hủy.")  # it stays, struck out: readers must see it went

    page = c.get("/work-calendar", params={"week": week}, headers=outsider)
    assert page.status_code == 200 and "Điều chỉnh" in page.text and "Thị xã Quảng Yên" in page.text
    assert "Duyệt lịch tuần" not in page.text and "Thêm vào lịch" not in page.text
    assert "Thêm vào lịch" in c.get("/work-calendar", params={"week": week}, headers=org).text

    anonymous = c  # no bearer header, no cookie: nobody logged in (one client: one event loop for asyncpg)
    public = anonymous.get(f"/public/work-calendar/{world.units['UBND'].id}", params={"week": week})
    assert public.status_code == 200 and "Thị xã Quảng Yên" in public.text and "Điều chỉnh" in public.text
    assert "Họp về nhân sự" not in public.text and "Cuộc họp (mật)" in public.text
    hidden = anonymous.get(f"/public/work-calendar/{world.units['UBND'].id}",
                           params={"week": week_of(monday + dt.timedelta(days=7))})
    assert hidden.status_code == 200 and "chưa được công khai" in hidden.text

    for action, count in (("workcal.entry.add", 3), ("workcal.week.approve", 2), ("workcal.week.publish", 1),
                          ("workcal.entry.update", 1), ("workcal.entry.remove", 2)):
        assert await audit_count(world, action) == count, action


def _events(body: bytes) -> dict[str, Any]:
    cal = icalendar.Calendar.from_ical(body)
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Ho_Chi_Minh"]
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


async def test_feeds_parse_with_local_times_and_reset_kills_the_old_url(app_client: TestClient,
                                                                        world: World) -> None:
    c = app_client
    org, member, chair, outsider = [await bearer(world, k) for k in ("organiser", "member", "chair", "outsider")]
    monday = next_monday()
    open_ = meeting(c, org, "Họp giao ban tuần", at(monday, 9), at(monday, 10, 30), chair=world.chair.id,
                    invite=[world.member.id])
    secret = meeting(c, org, "Kỷ luật cán bộ sở X", at(monday, 14), at(monday, 15), chair=world.chair.id,
                     invite=[world.member.id], confidential=True)
    thursday = monday + dt.timedelta(days=3)
    gone = meeting(c, org, "Hội nghị đã hủy", at(thursday, 8), at(thursday, 9), chair=world.chair.id,
                   invite=[world.member.id])
    assert c.post(f"/api/meetings/{gone['id']}/cancel", json={"reason": "Lãnh đạo bận đột xuất"},
                  headers=org).status_code == 200
    meeting(c, org, "Họp không mời tôi", at(monday, 16), at(monday, 17), chair=world.district.id)

    assert c.get("/api/calendar/feeds", headers=member).json() == {"personal": False, "leader": False}
    r = c.post("/api/calendar/feeds/personal", json={}, headers=member)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    anonymous = c  # no bearer header, no cookie: nobody logged in (one client: one event loop for asyncpg)
    feed = anonymous.get(url)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    events = _events(feed.content)
    assert set(events) == {f"meeting-{m['id']}@eoffice.invalid" for m in (open_, secret, gone)}
    first = events[f"meeting-{open_['id']}@eoffice.invalid"]
    start = first.decoded("DTSTART")
    assert start.tzinfo is not None and start.astimezone(HN) == dt.datetime.combine(monday, dt.time(9), HN)
    assert first["DTSTART"].params["TZID"] == "Asia/Ho_Chi_Minh"
    assert first.decoded("DTEND").astimezone(HN).time() == dt.time(10, 30)
    assert str(first["SUMMARY"]) == "Họp giao ban tuần" and str(first["STATUS"]) == "CONFIRMED"
    assert str(events[f"meeting-{gone['id']}@eoffice.invalid"]["STATUS"]) == "CANCELLED"
    assert str(events[f"meeting-{secret['id']}@eoffice.invalid"]["SUMMARY"]) == "Cuộc họp (mật)"
    assert "Kỷ luật" not in feed.content.decode()
    assert _events(anonymous.get(url).content).keys() == events.keys()  # stable UIDs

    again = c.post("/api/calendar/feeds/personal", json={}, headers=member).json()["url"]
    assert again != url
    old = anonymous.get(url)
    assert old.status_code == 404 and "Không tìm thấy" in old.text
    assert anonymous.get(again).status_code == 200
    assert c.get("/api/calendar/feeds", headers=member).json()["personal"] is True

    # the leader's public calendar: published entries of public weeks
    assert c.post("/api/calendar/feeds/leader", json={}, headers=outsider).status_code == 403
    r = c.post("/api/work-calendar/entries", headers=org, json={
        "starts_at": at(monday + dt.timedelta(days=4), 8), "leader_ids": [world.chair.id],
        "content": "Tiếp và làm việc với Đoàn công tác Bộ Nội vụ", "place": "Trụ sở UBND tỉnh"})
    assert r.status_code == 201
    leader_url = c.post("/api/calendar/feeds/leader", json={}, headers=chair).json()["url"]
    assert _events(anonymous.get(leader_url).content) == {}  # not published yet
    week_id = c.get("/api/work-calendar", params={"week": week_of(monday)}, headers=org).json()["id"]
    assert c.post(f"/api/work-calendar/weeks/{week_id}/approve", json={}, headers=chair).status_code == 200
    assert c.post(f"/api/work-calendar/weeks/{week_id}/publish", json={"public": True}, headers=org).status_code == 200
    public = _events(anonymous.get(leader_url).content)
    entry_uid = f"workcal-{r.json()['id']}@eoffice.invalid"
    assert str(public[entry_uid]["SUMMARY"]) == "Tiếp và làm việc với Đoàn công tác Bộ Nội vụ"
    assert str(public[f"meeting-{secret['id']}@eoffice.invalid"]["SUMMARY"]) == "Cuộc họp (mật)"
    assert "Kỷ luật" not in anonymous.get(leader_url).text
    # the account page makes and resets the URL too
    page = c.get("/account", headers=member)
    assert "Lịch trên điện thoại" in page.text
    assert await audit_count(world, "calendar.feed.reset") == 3


async def test_bad_input_is_a_vietnamese_4xx(app_client: TestClient, world: World) -> None:
    c = app_client
    org = await bearer(world, "organiser")
    for params in ({"week": "2026-W99"}, {"week": "2026-W00"}, {"week": "tuần sau"},
                   {"view": "month", "year": "2026", "month": "13"}, {"view": "month", "year": "-1", "month": "5"},
                   {"view": "month", "year": "2026", "month": "0"}, {"view": "month", "year": "99999999999999",
                                                                      "month": "1"},
                   {"view": "year"}):
        r = c.get("/api/calendar", params=params, headers=org)
        assert r.status_code == 400, (params, r.text)
        assert "không hợp lệ" in r.json()["message"], params
    for path, params in (("/calendar", {"week": "2026-W99"}), ("/calendar/month", {"year": "2026", "month": "13"}),
                         ("/calendar/month", {"year": "-1", "month": "1"}), ("/work-calendar", {"week": "2026-W99"}),
                         (f"/public/work-calendar/{world.units['UBND'].id}", {"week": "2026-W99"})):
        r = c.get(path, params=params, headers=org)
        assert r.status_code == 400, (path, params, r.status_code)
        assert "không hợp lệ" in r.text
    assert c.get("/api/work-calendar", params={"week": "2026-W99"}, headers=org).status_code == 400
    assert c.get("/public/work-calendar/999999").status_code == 404
    assert c.get(f"/public/work-calendar/{world.units['VP'].id}").status_code == 404  # not an agency
    assert c.get("/calendar/feed/khong-co.ics").status_code == 404
    assert c.post("/api/calendar/feeds/other", json={}, headers=org).status_code == 400
    monday = next_monday()
    base = {"starts_at": at(monday, 8), "leader_ids": [world.chair.id], "content": "Làm việc tại trụ sở"}
    for body in ({**base, "starts_at": "thứ hai"}, {**base, "leader_ids": "1"}, {**base, "content": ""},
                 {**base, "leader_ids": []}, {**base, "ends_at": at(monday, 7)}):
        r = c.post("/api/work-calendar/entries", json=body, headers=org)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["message"] and r.json()["error"] == "invalid"
    r = c.patch("/api/work-calendar/entries/999999", json={"place": "x"}, headers=org)
    assert r.status_code == 404
    r = c.post("/work-calendar/entries", data={"day": "31/02/2026", "time": "08:00", "content": "Họp",
                                               "leader_ids": str(world.chair.id)}, headers=org)
    assert r.status_code == 400 and "Ngày không hợp lệ" in r.text


async def test_the_pages_forms_work_with_a_session_and_its_csrf_token(app_client: TestClient, world: World) -> None:
    from tests.web.conftest import csrf_from, login

    c = app_client
    monday = next_monday()
    week = week_of(monday)
    login(c, "vanthu")
    page = c.get("/work-calendar", params={"week": week})
    assert page.status_code == 200 and "Thêm vào lịch" in page.text
    form = {"csrf_token": csrf_from(page.text), "day": (monday + dt.timedelta(days=3)).strftime("%d/%m/%Y"),
            "time": "08:30", "end_time": "11:00", "leader_ids": str(world.member.id),
            "content": "Dự Hội nghị tổng kết công tác năm của ngành Giáo dục", "place": "Hội trường tỉnh",
            "participants": "Sở Giáo dục và Đào tạo", "preparing_unit": "Sở Giáo dục và Đào tạo"}
    assert c.post("/work-calendar/entries", data={**form, "csrf_token": "sai"}).status_code == 403
    r = c.post("/work-calendar/entries", data=form)
    assert r.status_code == 303 and r.headers["location"] == f"/work-calendar?week={week}&done=added"
    page = c.get(r.headers["location"])
    assert "Dự Hội nghị tổng kết công tác năm" in page.text and "08:30–11:00" in page.text
    assert "Thứ Năm, " + (monday + dt.timedelta(days=3)).strftime("%d/%m/%Y") in page.text
    assert "Duyệt lịch tuần" not in page.text  # the office does not approve

    c.cookies.clear()
    login(c, "phochutich")
    page = c.get("/work-calendar", params={"week": week})
    week_id = c.get("/api/work-calendar", params={"week": week}).json()["id"]
    assert "Duyệt lịch tuần" in page.text
    r = c.post(f"/work-calendar/weeks/{week_id}/approve?week={week}", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert "Đã duyệt lịch" in page.text and "Ban hành lịch tuần" in page.text
    r = c.post(f"/work-calendar/weeks/{week_id}/publish?week={week}",
               data={"csrf_token": csrf_from(page.text), "public": "1"})
    assert r.status_code == 303
    assert c.get("/api/work-calendar", params={"week": week}).json()["state"] == "published"

    page = c.get("/account")
    r = c.post("/account/calendar-feeds/personal/reset", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 201
    url = r.text.split('id="new-feed-url">', 1)[1].split("<", 1)[0]
    assert url.startswith("http://testserver/calendar/feed/") and url.endswith(".ics")
    events = _events(c.get(url).content)
    assert [str(e["SUMMARY"]) for e in events.values()] == ["Dự Hội nghị tổng kết công tác năm của ngành Giáo dục"]
    r = c.post("/account/calendar-feeds/personal/off", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 200 and "Đã tắt đường dẫn lịch" in r.text
    assert c.get(url).status_code == 404
    public_url = f"/public/work-calendar/{world.units['UBND'].id}?week={week}"

    c.cookies.clear()
    login(c, "vanthu")
    page = c.get("/work-calendar", params={"week": week})
    entry_id = c.get("/api/work-calendar", params={"week": week}).json()["days"][3]["items"][0]["id"]
    r = c.post(f"/work-calendar/entries/{entry_id}/edit?week={week}", data={**form, "csrf_token": csrf_from(page.text),
                                                                           "place": "Trung tâm Hội nghị tỉnh"})
    assert r.status_code == 303, r.text
    page = c.get(r.headers["location"])
    assert "Đã sửa mục lịch" in page.text
    assert "địa điểm: Hội trường tỉnh → Trung tâm Hội nghị tỉnh" in page.text and "wc-mark" in page.text
    assert "Trung tâm Hội nghị tỉnh" in c.get(public_url).text
    r = c.post(f"/work-calendar/weeks/{week_id}/public?week={week}",
               data={"csrf_token": csrf_from(page.text), "public": "0"})
    assert r.status_code == 303
    assert "chưa được công khai" in c.get(public_url).text


async def test_calendar_answers_match_their_schemas(settings: Settings, world: World) -> None:
    """The journeys above, with every /api answer checked against the served OpenAPI description."""
    from tests.web.test_openapi_contract import Contract, Recorder, _check_all

    recorder = Recorder()
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        doc = c.get("/api/openapi.json").json()
        recorder.attach(c)
        await test_work_calendar_drafted_approved_published_and_adjusted(c, world)
        await test_week_and_month_show_my_meetings_and_not_others(c, world)
        member = await bearer(world, "member")
        assert c.post("/api/calendar/feeds/personal", json={}, headers=member).status_code == 201
        assert c.get("/api/calendar/feeds", headers=member).json()["personal"] is True
    checked = _check_all(Contract(doc), recorder)
    for op in ("GET /api/calendar", "GET /api/work-calendar", "POST /api/work-calendar/entries",
               "PATCH /api/work-calendar/entries/{entry_id}", "DELETE /api/work-calendar/entries/{entry_id}",
               "POST /api/work-calendar/weeks/{week_id}/{action}", "GET /api/calendar/feeds",
               "POST /api/calendar/feeds/{kind}", "POST /api/meetings/{meeting_id}/participants"):
        assert op in checked, (op, sorted(checked))


async def test_two_clerks_start_the_same_week_at_once(world: World) -> None:
    """Both first lines land in the one week (the unique (agency, week) is an insert-or-nothing, not a 500)."""
    import asyncio

    from meetings import work_calendar as wc
    from meetings.calendar_schema import WorkEntry, WorkWeek

    monday = next_monday() + dt.timedelta(days=14)
    start = dt.datetime.combine(monday, dt.time(8), HN)

    async def add(content: str) -> int:
        async with world.db.uow() as uow:
            entry = await wc.add_entry(uow, world.organiser, starts_at=start, leader_ids=[world.chair.id],
                                       content=content)
            await uow.commit()
            return entry.week_id

    weeks = await asyncio.gather(add("Làm việc với Sở Y tế"), add("Làm việc với Sở Giáo dục và Đào tạo"))
    assert weeks[0] == weeks[1]
    async with world.db.uow(readonly=True) as uow:
        assert await uow.session.scalar(select(func.count()).select_from(WorkWeek)) == 1
        assert await uow.session.scalar(select(func.count()).select_from(WorkEntry)) == 2
    assert await audit_count(world, "workcal.week.create") == 1
