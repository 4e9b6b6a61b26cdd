"""Minutes as a Decree 30 record: header, number and place-and-date line, serif font, numbering per agency
and year that survives reopening, and the chair's and secretary's signatures that both validate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pymupdf
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import dossiers, identity, registers
from eoffice.audit import AuditEntry
from eoffice.signatures import verify_pdf
from meetings import attendance, lifecycle, meeting_dossier, minutes, minutes_record, render
from meetings.schema import Meeting
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from storage.settings import Settings
from tests.meetings.conftest import PASSWORD, World, call, run
from tests.meetings.personal_keys import PASSPHRASE, use_personal_keys
from web.app import create_app


def words(data: bytes) -> str:
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        return " ".join(" ".join(page.get_text() for page in doc).split())
    finally:
        doc.close()


def fonts(data: bytes) -> set[str]:
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        return {f[3] for page in doc for f in page.get_fonts()}
    finally:
        doc.close()


def visible_signatures(data: bytes) -> dict[str, pymupdf.Rect]:
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        return {w.field_name: w.rect for page in doc for w in page.widgets()
                if w.field_type == pymupdf.PDF_WIDGET_TYPE_SIGNATURE}
    finally:
        doc.close()


def test_place_and_date_lines() -> None:
    assert minutes_record.place_name("Ủy ban nhân dân tỉnh Quảng Ninh") == "Quảng Ninh"
    assert minutes_record.place_name("Ủy ban nhân dân thị xã Đông Triều") == "Đông Triều"
    assert minutes_record.date_line("Quảng Ninh", dt.date(2026, 12, 7)) == "Quảng Ninh, ngày 07 tháng 12 năm 2026"
    assert minutes_record.date_line("Hà Nội", dt.date(2027, 2, 15)) == "Hà Nội, ngày 15 tháng 02 năm 2027"
    assert minutes_record.number_line("12/BB-UBND", "UBND") == "Số: 12/BB-UBND"
    assert minutes_record.number_line(None, "UBND").replace(" ", "") == "Số:/BB-UBND"


def test_missing_font_is_a_clear_error(tmp_path: Path) -> None:
    family = render.FontFamily(str(tmp_path / "Times.ttf"), str(tmp_path / "b.ttf"), str(tmp_path / "i.ttf"))
    with pytest.raises(render.FontMissing, match="fonts-liberation2"):
        render.Writer(family=family)


async def _ended(world: World, *, start: bool = True) -> int:
    m = await world.meeting(start=start, items=1)
    await call(world.db, attendance.check_in, world.chair, m["seats"]["member"])
    await call(world.db, lifecycle.end_meeting, world.chair, m["meeting_id"])
    return int(m["meeting_id"])


async def _meeting(world: World, mid: int) -> Meeting:
    async with world.db.uow() as uow:
        m = await uow.session.get(Meeting, mid)
        assert m is not None
        return m


async def test_record_pdf_numbering_and_reopen(world: World) -> None:
    mid = await _ended(world)
    async with world.db.uow() as uow:
        _, draft = await minutes.export_pdf(uow, world.chair, mid)
    text = words(draft)
    assert "Số: /BB-UBND" in text and "DỰ THẢO" in text
    names = {f.split("+")[-1].replace(" ", "").replace("-", "") for f in fonts(draft)}
    assert {"LiberationSerifRegular", "LiberationSerifBold", "LiberationSerifItalic"} <= names, names
    assert not any("Noto" in f for f in fonts(draft))

    approved = await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    assert approved.minutes_notation == "01/BB-UBND" and approved.minutes_number == 1
    m = await _meeting(world, mid)
    day = (m.started_at or m.starts_at).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    text = words(await world.blobs.read(approved.minutes_blob_key))
    assert "Số: 01/BB-UBND" in text
    assert minutes_record.date_line("Quảng Ninh", day) in text
    for heading in ("ỦY BAN NHÂN DÂN TỈNH QUẢNG NINH", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                    "Độc lập - Tự do - Hạnh phúc", "BIÊN BẢN", "I. THÀNH PHẦN THAM DỰ", "II. NỘI DUNG CUỘC HỌP",
                    "Cuộc họp kết thúc vào", "THƯ KÝ", "CHỦ TRÌ", "Nơi nhận:"):
        assert heading in text, heading
    assert "DỰ THẢO" not in text

    # reopened and approved again: the same number; the next minutes take 02
    await call(world.db, minutes.reopen, world.chair, mid, reason="Bổ sung ý kiến")
    again = await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    assert again.minutes_notation == "01/BB-UBND"
    second = await call(world.db, minutes.approve, world.chair, await _ended(world), world.blobs)
    assert second.minutes_notation == "02/BB-UBND"
    async with world.db.uow() as uow:  # the BB series of the agency's outgoing register, this year
        year = registers.register_year(m.started_at or m.starts_at)
        reg = await uow.session.get(registers.Register, again.minutes_register_id)
        assert reg is not None and (reg.series, reg.year, reg.last_number) == ("bien_ban", year, 2)
        # another year counts from 01 again
        reg_id, n = await registers.allocate_number(uow, reg.agency_id, "out", "bien_ban", year + 1)
        assert n == 1 and reg_id != reg.id


@pytest.fixture
def personal_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    return use_personal_keys(tmp_path, monkeypatch, "chutich", "thuky")


async def test_chair_and_secretary_sign(world: World, personal_keys: list, monkeypatch: pytest.MonkeyPatch) -> None:
    mid = await _ended(world)
    with pytest.raises(Conflict, match="đã được chủ trì phê duyệt"):
        await call(world.db, minutes_record.sign, world.chair, world.blobs, mid, passphrase=PASSPHRASE)
    await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    with pytest.raises(Forbidden):
        await call(world.db, minutes_record.sign, world.member, world.blobs, mid, passphrase=PASSPHRASE)
    with pytest.raises(Invalid, match="Sai mật khẩu"):
        await call(world.db, minutes_record.sign, world.chair, world.blobs, mid, passphrase="sai")
    row, events = await run(world.db, minutes_record.sign, world.chair, world.blobs, mid, passphrase=PASSPHRASE)
    assert row.role == "chair" and events[-1]["type"] == "minutes.signed"
    with pytest.raises(Conflict, match="đã ký"):
        await call(world.db, minutes_record.sign, world.chair, world.blobs, mid, passphrase=PASSPHRASE)
    await call(world.db, minutes_record.sign, world.secretary, world.blobs, mid, passphrase=PASSPHRASE)

    async with world.db.uow() as uow:
        view = await minutes_record.record_view(uow, world.secretary, mid)
        _, signed = await minutes_record.signed_pdf(uow, world.chair, world.blobs, mid)
        with pytest.raises(Forbidden):
            await minutes_record.signed_pdf(uow, world.member, world.blobs, mid)
    assert [s["role"] for s in view["signatures"]] == ["chair", "secretary"] and not view["can_sign"]
    assert view["notation"] == "01/BB-UBND" and view["signed_file"]
    chair_sig, secretary_sig = await verify_pdf(signed, personal_keys)
    assert chair_sig.ok and chair_sig.trusted and chair_sig.changes_allowed and chair_sig.modified_after_signing
    assert secretary_sig.ok and secretary_sig.trusted and not secretary_sig.modified_after_signing
    assert "Quảng Ninh" in chair_sig.signer and "Sở Thông tin" in secretary_sig.signer
    assert "Số: 01/BB-UBND" in words(signed)
    boxes = visible_signatures(signed)  # shown under their headings in the signature block
    assert len(boxes) == 2 and all(r.width > 100 and r.height > 40 for r in boxes.values()), boxes

    # reopened: the signatures belong to the old approval; the new one is signed afresh
    await call(world.db, minutes.reopen, world.chair, mid, reason="Sửa lỗi chính tả")
    await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    async with world.db.uow() as uow:
        view = await minutes_record.record_view(uow, world.chair, mid)
    assert view["signatures"] == [] and view["can_sign"] and view["notation"] == "01/BB-UBND"
    monkeypatch.delenv("EOFFICE_PERSONAL_P12_DIR")
    async with world.db.uow() as uow:
        assert not (await minutes_record.record_view(uow, world.chair, mid))["has_certificate"]
    with pytest.raises(Conflict, match="chưa cấu hình chứng thư số cá nhân"):
        await call(world.db, minutes_record.sign, world.chair, world.blobs, mid, passphrase=PASSPHRASE)


async def test_signed_minutes_land_in_the_meeting_dossier(world: World, personal_keys: list) -> None:
    # linked beforehand to the secretary's own dossier
    mid = await _ended(world)
    d = await call(world.db, dossiers.open_dossier, world.secretary, "Hồ sơ các cuộc họp UBND tháng 12")
    with pytest.raises(Forbidden):
        await call(world.db, meeting_dossier.link, world.member, mid, d.id)
    with pytest.raises(NotFound):  # the chair cannot file into someone else's dossier
        await call(world.db, meeting_dossier.link, world.chair, mid, d.id)
    await call(world.db, meeting_dossier.link, world.secretary, mid, d.id)
    await call(world.db, minutes.approve, world.chair, mid, world.blobs)
    await call(world.db, minutes_record.sign, world.chair, world.blobs, mid, passphrase=PASSPHRASE)
    async with world.db.uow() as uow:  # one signature: not a record yet
        assert (await dossiers.contents(uow, world.secretary, d.id))["files"] == []
    await call(world.db, minutes_record.sign, world.secretary, world.blobs, mid, passphrase=PASSPHRASE)
    async with world.db.uow() as uow:
        (f,) = (await dossiers.contents(uow, world.secretary, d.id))["files"]
        item = await dossiers.get_file(uow, world.secretary, d.id, f["id"])
        _, signed = await minutes_record.signed_pdf(uow, world.chair, world.blobs, mid)
        assert (await minutes_record.record_view(uow, world.secretary, mid))["dossier"]["id"] == d.id
        assert (await minutes_record.record_view(uow, world.chair, mid))["dossier"] is None  # not the owner
        with pytest.raises(NotFound):
            await dossiers.get_file(uow, world.chair, d.id, f["id"])
    assert f["name"] == "Biên bản 01-BB-UBND (đã ký số).pdf"
    assert item.blob_key and await world.blobs.read(item.blob_key) == signed
    assert [s.ok for s in await verify_pdf(signed, personal_keys)] == [True, True]

    # no dossier linked: one is opened for the secretary when the record is complete, and linked
    other = await _ended(world)
    await call(world.db, minutes.approve, world.chair, other, world.blobs)
    await call(world.db, minutes_record.sign, world.secretary, world.blobs, other, passphrase=PASSPHRASE)
    assert (await _meeting(world, other)).dossier_id is None
    await call(world.db, minutes_record.sign, world.chair, world.blobs, other, passphrase=PASSPHRASE)
    m = await _meeting(world, other)
    assert m.dossier_id and m.dossier_id != d.id
    async with world.db.uow() as uow:
        c = await dossiers.contents(uow, world.secretary, m.dossier_id)
        rows = (await uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "dossier.file")
                                          .order_by(AuditEntry.seq))).all()
    assert c["dossier"]["title"] == f"Hồ sơ cuộc họp: {m.title}" and c["dossier"]["owner_id"] == world.secretary.id
    assert [x["name"] for x in c["files"]] == ["Biên bản 02-BB-UBND (đã ký số).pdf"]
    assert [(e.actor_id, e.data["meeting_id"]) for e in rows] == [(world.secretary.id, mid), (world.chair.id, other)]


@pytest.fixture
def app_client(settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


async def test_sign_over_http(app_client: TestClient, world: World, personal_keys: list) -> None:
    from tests.web.conftest import login

    c = app_client
    mid = await _ended(world)
    record = f"/api/meetings/{mid}/minutes/record"
    login(c, "chutich", PASSWORD)
    assert c.get(record).json()["notation"] is None
    page = c.get(f"/meetings/{mid}")
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    csrf = {"X-CSRF-Token": token}
    assert c.post(f"/api/meetings/{mid}/minutes/approve", headers=csrf).json()["state"] == "approved"
    body = {"passphrase": PASSPHRASE}
    assert c.post(f"/api/meetings/{mid}/minutes/sign", json=body).status_code == 403  # no CSRF token
    assert c.post(f"/api/meetings/{mid}/minutes/sign", json={}, headers=csrf).status_code == 400
    r = c.post(f"/api/meetings/{mid}/minutes/sign", json=body, headers=csrf)
    assert r.status_code == 201 and r.json() == {"ok": True, "role": "chair", "signatures": 1}
    view = c.get(record).json()
    assert view["notation"] == "01/BB-UBND" and view["signatures"][0]["name"] == "Trần Văn Hùng"
    assert view["has_certificate"] and not view["can_sign"]
    assert "01/BB-UBND" in c.get(f"/meetings/{mid}").text  # the number on the meeting page
    c.cookies.clear()

    member = {"Authorization": "Bearer " + await _token(world, "member")}
    assert c.post(f"/api/meetings/{mid}/minutes/sign", json=body, headers=member).status_code == 403
    assert c.get(f"/api/meetings/{mid}/minutes/signed.pdf", headers=member).status_code == 403
    secretary = {"Authorization": "Bearer " + await _token(world, "secretary")}
    r = c.post(f"/api/meetings/{mid}/minutes/sign", json=body, headers=secretary)
    assert r.status_code == 201 and r.json()["signatures"] == 2
    r = c.get(f"/api/meetings/{mid}/minutes/signed.pdf", headers=secretary)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert [s.ok for s in await verify_pdf(r.content, personal_keys)] == [True, True]
    # filed in the meeting's dossier, which the meeting page links for its owner (the secretary)
    dossier = c.get(record, headers=secretary).json()["dossier"]
    (f,) = c.get(f"/api/dossiers/{dossier['id']}", headers=secretary).json()["files"]
    assert c.get(f["url"], headers=secretary).content == r.content
    assert c.get(f["url"], headers=member).status_code == 404
    assert c.get(record, headers=member).json()["dossier"] is None

    async with world.db.uow() as uow:
        rows = (await uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "meeting.minutes.sign")
                                          .order_by(AuditEntry.seq))).all()
    assert [(e.actor_id, e.data["role"]) for e in rows] == [(world.chair.id, "chair"),
                                                               (world.secretary.id, "secretary")]


async def _token(world: World, key: str) -> str:
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.users[key])
        await uow.commit()
    return str(token)


def test_without_liberation_serif_minutes_fall_back_to_the_bundled_font(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    """A server started with nothing but Python (no Debian fonts) still writes its minutes."""
    assert render.administrative_family() == render.LIBERATION_SERIF  # installed by make test
    missing = render.FontFamily(*(str(tmp_path / f"{n}.ttf") for n in ("r", "b", "i")))
    monkeypatch.setattr(render, "LIBERATION_SERIF", missing)
    assert render.administrative_family() == render.NOTO_SANS
