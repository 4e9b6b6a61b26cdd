"""Packages as other vendors' software writes them (tests/eoffice/edxml_corpus, origins in its
README): each one imports; a tampered signed package is shown as invalid; a status about a document
we do not know is kept and listed; dates in the forms real packages use; the CLI's exit status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import edxml
from eoffice.documents import attachments_of
from eoffice.edxml_parse import PackageError, parse, parse_date, parse_datetime
from eoffice.safe_names import safe_filename
from eoffice.schema.documents import Document
from storage.blobs import BlobStore
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.conftest import Org
from tests.eoffice.test_api import _setup
from tests.eoffice.test_cli import _run
from tests.web.conftest import run
from web.app import create_app

CORPUS_DIR = Path(__file__).parent / "edxml_corpus"
FILES = sorted(CORPUS_DIR.glob("*.edxml"))
DATA = {f.name: f.read_bytes() for f in FILES}
EXPECTED = {  # file -> (action, number of attachments)
    "bare_envelope.edxml": ("registered", 1),
    "edoc_go_vn.edxml": ("registered", 1),
    "status_unknown_document.edxml": ("status_unmatched", 0),
    "wrapped_gateway_zipped_pdf.edxml": ("registered", 1),
    "wrapped_multi_office.edxml": ("registered", 6),
    "wrapped_signed.edxml": ("registered", 1),
}


def test_corpus_is_listed_in_readme() -> None:
    readme = (CORPUS_DIR / "README.md").read_text(encoding="utf-8")
    assert {f.name for f in FILES} == set(EXPECTED)
    assert all(f"`{f.name}`" in readme for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
async def test_every_corpus_package_imports(path: Path, db: Database, org: Org, blobs: BlobStore) -> None:
    action, n_files = EXPECTED[path.name]
    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, DATA[path.name], path.name)
        await uow.commit()
    assert result.ok, result.message
    assert result.action == action
    if action != "registered":
        return
    async with db.uow() as uow:
        doc = await uow.session.get(Document, result.document.id)  # type: ignore[union-attr]
        assert doc is not None and doc.number is not None and doc.number >= 1  # a number, PDF or not
        atts = await attachments_of(uow, doc)
    assert len(atts) == n_files
    for att in atts:
        assert att.filename == safe_filename(att.filename)
        assert await blobs.read(att.blob_key, limit=10_000_000)


async def test_office_attachments_are_stored_as_received(db: Database, org: Org, blobs: BlobStore) -> None:
    data = (CORPUS_DIR / "wrapped_multi_office.edxml").read_bytes()
    pkg = parse(data)
    assert [a.content_id for a in pkg.attachments] == ["209", "210", "211", "212", "213", "214"]
    assert pkg.sender.organ_id == "000.00.00.H41" and pkg.priority == "1" and pkg.urgency == "khan"
    assert pkg.to_places == ["Như trên", "Lưu: VT, TH"] and pkg.steering_type == "0"
    assert pkg.trace == [("000.00.00.H41", "2026/12/01 09:30:00")]
    assert pkg.document_id == "000.00.00.H41,2026/12/01,7816/VPCP-TTĐT"
    assert pkg.date_issued == dt.date(2026, 12, 1) and pkg.due_date == dt.date(2026, 12, 20)
    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, data, "goi.edxml")
        await uow.commit()
        atts = {a.filename: a for a in await attachments_of(uow, result.document)}  # type: ignore[arg-type]
    for a in pkg.attachments:
        assert await blobs.read(atts[a.name].blob_key, limit=10_000_000) == a.data  # byte for byte
    assert not atts["ghi-chu.txt"].is_pdf and atts["ghi-chu.txt"].page_count is None


def test_gateway_zipped_pdf_is_unwrapped() -> None:
    pkg = parse((CORPUS_DIR / "wrapped_gateway_zipped_pdf.edxml").read_bytes())
    assert pkg.attachments[0].data.startswith(b"%PDF-") and any("giải nén" in r for r in pkg.recovered)


def test_manifest_entry_without_data_is_refused() -> None:
    data = (CORPUS_DIR / "wrapped_multi_office.edxml").read_bytes()
    start = data.index(b"<Attachment><ContentType>text/plain")
    broken = data[:start] + data[data.index(b"</Attachment>", start) + len(b"</Attachment>"):]
    with pytest.raises(PackageError) as err:
        parse(broken)
    assert err.value.problem == "missing_attachment_data" and "211" in err.value.message


async def test_signature_is_verified_and_tampering_shows_invalid(db: Database, org: Org,
                                                                 blobs: BlobStore) -> None:
    signed = (CORPUS_DIR / "wrapped_signed.edxml").read_bytes()
    good = parse(signed).signature
    assert good.result == "valid" and good.signer == "Nguyễn Văn Thành" and "Quảng Ninh" in good.subject
    tampered = signed.replace("Quyết định phê duyệt".encode(), "Quyết định hủy bỏ".encode())
    assert tampered != signed
    bad = parse(tampered).signature
    assert bad.result == "invalid" and bad.signer == "Nguyễn Văn Thành" and bad.message
    async with db.uow() as uow:
        ok = await edxml.import_package(uow, org["vanthu"], blobs, signed, "ky.edxml")
        forged = await edxml.import_package(uow, org["vanthu"], blobs,
                                            tampered.replace(b"<edXML:CodeNumber>88<", b"<edXML:CodeNumber>89<"),
                                            "ky-sua.edxml")
        await uow.commit()
    assert ok.ok and forged.ok  # registered, but the result is recorded and shown, not hidden
    async with db.uow() as uow:
        good_t = await edxml.timeline(uow, org["vanthu"], ok.document.id)  # type: ignore[union-attr]
        bad_t = await edxml.timeline(uow, org["vanthu"], forged.document.id)  # type: ignore[union-attr]
    assert good_t["signature"]["result"] == "valid"
    assert bad_t["signature"]["result"] == "invalid" and bad_t["signature"]["label"] == "Chữ ký số KHÔNG hợp lệ"
    unsigned = await _timeline_of(db, org, blobs, CORPUS_DIR / "bare_envelope.edxml")
    assert unsigned["signature"]["result"] == "unsigned"


async def _timeline_of(db: Database, org: Org, blobs: BlobStore, path: Path) -> dict:
    async with db.uow() as uow:
        r = await edxml.import_package(uow, org["vanthu"], blobs, DATA[path.name], path.name)
        await uow.commit()
    async with db.uow() as uow:
        return await edxml.timeline(uow, org["vanthu"], r.document.id)  # type: ignore[union-attr]


async def test_unmatched_status_is_kept_and_listed(db: Database, org: Org, blobs: BlobStore) -> None:
    data = (CORPUS_DIR / "status_unknown_document.edxml").read_bytes()
    async with db.uow() as uow:
        assert await edxml.unmatched_statuses(uow, org["vanthu"]) == []
        result = await edxml.import_package(uow, org["vanthu"], blobs, data, "trang-thai.edxml")
        await uow.commit()
    assert result.ok and result.action == "status_unmatched" and "7816/VPCP-TTĐT" in result.message
    assert any("2014/02/30" in r for r in result.recovered)
    async with db.uow() as uow:
        rows = await edxml.unmatched_statuses(uow, org["vanthu"])
        assert not (await uow.session.scalars(select(edxml.EdxmlQuarantine))).all()
    assert len(rows) == 1
    row = rows[0].public()
    assert row["status_code"] == "03" and row["unmatched"] and row["organ_id"] == "000.00.00.H41"
    assert row["details"]["ref_notation"] == "7816/VPCP-TTĐT" and row["details"]["ref_date"] == "2014/02/30"
    assert row["details"]["ref_document_id"] == "000.00.00.G22,2014/02/30,7816/VPCP-TTĐT"
    assert "Trần Thị Hoa" in row["details"]["staff"] and row["details"]["at"].startswith("2026-12-07T08:15:00")


def test_dates_in_real_forms() -> None:
    assert parse_date("2026/12/01", "x") == dt.date(2026, 12, 1)
    assert parse_date("2026/12/01 09:30:00", "x") == dt.date(2026, 12, 1)
    stamp = parse_datetime("2026/12/07 08:15:00", "x")
    assert stamp is not None and (stamp.hour, stamp.minute) == (8, 15) and stamp.tzinfo is not None
    with pytest.raises(PackageError):
        parse_date("2014/02/30", "PromulgationInfo/PromulgationDate")
    # where it would be the registered date, an impossible date is refused
    data = (CORPUS_DIR / "wrapped_multi_office.edxml").read_bytes().replace(
        b"<edXML:PromulgationDate>2026/12/01<", b"<edXML:PromulgationDate>2014/02/30<")
    with pytest.raises(PackageError) as err:
        parse(data)
    assert err.value.problem == "bad_date"


def test_old_edoc_namespace_is_read_or_refused_by_name() -> None:
    pkg = parse((CORPUS_DIR / "edoc_go_vn.edxml").read_bytes())
    assert pkg.layout == "edoc_go_vn" and pkg.notation == "123/CV-XC" and pkg.type_name == "Công văn"
    assert pkg.signer == "Lê Văn Hùng" and pkg.document_id == "ab535a99-cb2a-404f-8fe8-a762bf4010cc"
    with pytest.raises(PackageError) as err:
        parse(b'<EdXMLEnvelope xmlns="http://www.go.vn/eDoc"><Manifest/></EdXMLEnvelope>')
    assert "http://www.go.vn/eDoc" in err.value.message and err.value.problem == "old_edoc_format"


def test_hostile_names_and_entities_stay_out() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename('C:\\Windows\\con.txt') == "_con.txt"
    assert safe_filename("bao\x00cao\u202e.docx") == "bao_cao.docx"
    assert safe_filename("..") == "tep-dinh-kem"
    assert len(safe_filename("ả" * 400 + ".pdf").encode()) <= 200
    data = (CORPUS_DIR / "wrapped_multi_office.edxml").read_bytes().replace(
        b"bao-cao-chinh-quyen-dien-tu.docx", b"../../bao cao.docx")
    pkg = parse(data)
    assert pkg.attachments[0].name == "bao cao.docx" and any("đổi tên" in r for r in pkg.recovered)
    bomb = b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "aaaa">]><edXML>&a;</edXML>'
    with pytest.raises(PackageError) as err:
        parse(bomb)
    assert err.value.problem == "entity_declaration"


def test_cli_exit_status_non_zero_when_refused(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate").returncode == 0
    assert _run(tmp_path, "demo").returncode == 0
    ok = _run(tmp_path, "edxml", "import", str(CORPUS_DIR / "wrapped_multi_office.edxml"), "--as", "vanthu")
    assert ok.returncode == 0 and "registered" in ok.stdout, ok.stderr
    old = tmp_path / "cu.edxml"
    old.write_bytes(b'<EdXMLEnvelope xmlns="http://www.go.vn/eDoc"><Manifest/></EdXMLEnvelope>')
    refused = _run(tmp_path, "edxml", "import", str(old), "--as", "vanthu")
    assert refused.returncode == 1 and "eDoc" in refused.stderr


def test_unmatched_and_signature_through_the_api(settings: Settings) -> None:
    org, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    del org
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        def post(data: bytes) -> Any:
            return client.post("/api/edxml", content=data, headers={
                "Authorization": f"Bearer {tokens['vanthu']}", "Content-Type": "application/xml"})

        status = post(DATA["status_unknown_document.edxml"])
        assert status.status_code < 300 and status.json()["action"] == "status_unmatched"
        listed = client.get("/api/edxml/unmatched", headers={"Authorization": f"Bearer {tokens['vanthu']}"})
        items = listed.json()["items"]
        assert len(items) == 1 and items[0]["details"]["ref_notation"] == "7816/VPCP-TTĐT"
        assert client.get("/api/edxml/unmatched", headers={
            "Authorization": f"Bearer {tokens['chuyenvien']}"}).status_code == 403
        forged = DATA["wrapped_signed.edxml"].replace("phê duyệt".encode(), "bãi bỏ".encode())
        r = post(forged)
        assert r.status_code == 201 and r.json()["signature"]["result"] == "invalid"
        doc_id = r.json()["document"]["id"]
        t = client.get(f"/api/documents/{doc_id}/edxml/timeline",
                       headers={"Authorization": f"Bearer {tokens['vanthu']}"}).json()
        assert t["signature"]["result"] == "invalid" and t["signature"]["signer"] == "Nguyễn Văn Thành"


def test_impossible_due_date_and_data_without_content_id_are_tolerated() -> None:
    data = DATA["wrapped_multi_office.edxml"].replace(b"<edXML:DueDate>2026/12/20<", b"<edXML:DueDate>2026/02/30<")
    data = data.replace(b"<ContentId>209</ContentId>", b"")
    pkg = parse(data)
    assert pkg.due_date is None and any("DueDate" in r for r in pkg.recovered)
    assert pkg.attachments[0].name == "bao-cao-chinh-quyen-dien-tu.docx" and pkg.attachments[0].content_id == "209"
    assert len(pkg.attachments) == 6
