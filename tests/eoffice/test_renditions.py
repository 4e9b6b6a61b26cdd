"""Documents as they really arrive (#16): office attachments converted to a PDF rendition by the real LibreOffice,
scans read by the real Tesseract, on SQLite and PostgreSQL. Fixture files are made here: .docx and .doc by
LibreOffice from HTML, .xlsx by openpyxl, a scan as a PyMuPDF-rendered PNG of Vietnamese text at 300 dpi.

Under CI=true a missing LibreOffice or Tesseract fails these tests instead of skipping them
(``scripts/ensure-office.sh`` installs both)."""

from __future__ import annotations

import dataclasses
import glob
import html
import io
import os
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pymupdf
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from eoffice import edxml, renditions, search
from eoffice.documents import attachments_of, page_image, register_incoming
from eoffice.ingest import IngestRunner
from eoffice.schema.documents import Attachment, Document, IngestJob
from storage.blobs import BlobStore
from storage.db import Database
from storage.settings import Settings
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload
from tests.eoffice.edxml_corpus.make_corpus import wrapped
from tests.eoffice.test_api import _setup
from tests.web.conftest import run
from web.app import create_app

DOCX_TEXT = "Kế hoạch phòng chống lụt bão huyện Tiên Yên năm 2027"
SCAN_TEXT = "Ủy ban nhân dân tỉnh Quảng Ninh"
DOC_TEXT = "Báo cáo tổng kết công tác thi đua khen thưởng"
XLSX_TEXT = "Bảng tổng hợp kinh phí xã Hải Lạng"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _require_tools() -> None:
    missing = [name for name, ok in (("LibreOffice (soffice)", renditions.office_available()),
                                     ("Tesseract", renditions.ocr_available())) if not ok]
    if missing or "vie" not in subprocess.run(["tesseract", "--list-langs"], capture_output=True,
                                              text=True).stdout.split():
        message = f"{', '.join(missing) or 'tesseract-ocr-vie'} missing: run scripts/ensure-office.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def tools() -> None:
    _require_tools()


def _lo_convert(html: str, target: str, ext: str) -> bytes:
    """An office file LibreOffice writes from HTML (a .docx or an old binary .doc)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "nguon.html"
        src.write_text(f"<html><body><p>{html}</p></body></html>", encoding="utf-8")
        subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                        "--infilter=HTML (StarWriter)", "--convert-to",
                        target, "--outdir", tmp, str(src)], check=True, capture_output=True, timeout=120,
                       env={**os.environ, "HOME": tmp})
        return (Path(tmp) / f"nguon.{ext}").read_bytes()


@pytest.fixture(scope="module")
def docx() -> bytes:
    _require_tools()
    return _lo_convert(DOCX_TEXT, 'docx:MS Word 2007 XML', "docx")


@pytest.fixture(scope="module")
def doc97() -> bytes:
    _require_tools()
    return _lo_convert(DOC_TEXT, 'doc:MS Word 97', "doc")


def _xlsx() -> bytes:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active["A1"] = XLSX_TEXT
    wb.active["A2"] = 1250000
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def scan_png(text: str = SCAN_TEXT) -> bytes:
    """A page of Vietnamese text rendered at 300 dpi, as a scanner would give it."""
    with pymupdf.open() as doc:
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="dv", fontfile=FONT)
        page.insert_text((60, 120), text, fontsize=20, fontname="dv")
        page.insert_text((60, 160), "Số: 15/UBND-VX", fontsize=14, fontname="dv")
        return bytes(page.get_pixmap(dpi=300, colorspace=pymupdf.csGRAY).tobytes("png"))


async def _ingest(db: Database, blobs: BlobStore, jobs: list[int]) -> None:
    runner = IngestRunner(db, blobs, processes=0)
    runner.submit(jobs)
    await runner.drain()
    await runner.stop()


async def _hits(db: Database, org: Org, q: str) -> list[int]:
    async with db.uow(readonly=True) as uow:
        return [h.document.id for h in await search.search(uow, org["vanthu"], q)]


def test_sniff_decides_by_bytes_not_by_name(docx: bytes, doc97: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "x")
    assert renditions.sniff(docx) == "docx"
    assert renditions.sniff(doc97) == "doc"
    assert renditions.sniff(_xlsx()) == "xlsx"
    assert renditions.sniff(scan_png()) == "png"
    assert renditions.sniff(make_pdf()) == "pdf"
    assert renditions.sniff("Công văn số 15".encode()) == "txt"
    assert renditions.sniff(buf.getvalue()) == "zip"
    assert renditions.sniff(b"\x00\x01\x02binary") == ""
    assert renditions.other_format(doc97[:4096]) and not renditions.other_format(b"not a pdf, damaged")


async def test_edxml_docx_and_xlsx_get_searchable_pdf_renditions(db: Database, org: Org, blobs: BlobStore,
                                                                 docx: bytes) -> None:
    xlsx = _xlsx()
    package = wrapped("501", "UBND-NN", "Về việc chuẩn bị mùa mưa", [
        ("601", "ke-hoach.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx),
        ("602", "kinh-phi.xlsx", "application/octet-stream", xlsx)])
    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, package.encode(), "goi.edxml")
        await uow.commit()
    assert result.ok, result.message
    doc_id = result.document.id  # type: ignore[union-attr]
    assert await _hits(db, org, "phong chong lut bao tien yen") == []  # not before the conversion
    async with db.uow(readonly=True) as uow:
        jobs = list((await uow.session.scalars(select(IngestJob.id).where(IngestJob.document_id == doc_id))).all())
    assert len(jobs) == 2

    await _ingest(db, blobs, jobs)

    async with db.uow(readonly=True) as uow:
        statuses = (await uow.session.scalars(select(IngestJob.status).where(IngestJob.id.in_(jobs)))).all()
        assert set(statuses) == {"done"}
        doc = await uow.session.get(Document, doc_id)
        assert doc is not None
        atts = {a.filename: a for a in await attachments_of(uow, doc)}
        word = atts["ke-hoach.docx"]
        assert not word.is_pdf and word.rendition_blob_key and word.page_count == 1 and word.viewable
        assert await blobs.read(word.blob_key) == docx  # the original, untouched
        rendition = await blobs.read(word.rendition_blob_key)
        assert rendition.startswith(b"%PDF-")
        png = await page_image(uow, org["vanthu"], blobs, word.id, 1, 400)
        assert png.startswith(b"\x89PNG")
        assert pymupdf.Pixmap(png).width == 400
    assert await _hits(db, org, DOCX_TEXT) == [doc_id]
    assert await _hits(db, org, "ke hoach phong chong lut bao huyen tien yen") == [doc_id]
    assert await _hits(db, org, "tong hop kinh phi hai lang") == [doc_id]  # the spreadsheet's cell


async def test_scanned_image_and_scanned_pdf_page_are_read_by_ocr(db: Database, org: Org,
                                                                  blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    png = scan_png()
    with pymupdf.open() as scan_doc:  # a PDF whose only page is an image of text: no text layer
        page = scan_doc.new_page(width=595, height=842)
        page.insert_image(page.rect, stream=scan_png("Trường Tiểu học Hạ Long tổ chức khai giảng"))
        scanned_pdf = scan_doc.tobytes()
    fields = incoming_fields(1, sender="Sở Tài chính", summary="Công văn về việc quyết toán ngân sách")
    async with db.uow() as uow:
        up1 = await upload(uow, clerk, blobs, png, "scan.png", "image/png")
        up2 = await upload(uow, clerk, blobs, scanned_pdf, "ban-scan.pdf")
        doc, jobs = await register_incoming(uow, clerk, blobs, **fields, upload_ids=[up1, up2])
        await uow.commit()
    assert len(jobs) == 2
    assert await _hits(db, org, "uy ban nhan dan") == []

    await _ingest(db, blobs, jobs)

    assert await _hits(db, org, "Ủy ban nhân dân") == [doc.id]
    assert await _hits(db, org, "uy ban nhan dan quang ninh") == [doc.id]
    assert await _hits(db, org, "truong tieu hoc ha long khai giang") == [doc.id]  # the PDF's scanned page
    async with db.uow(readonly=True) as uow:
        atts = await attachments_of(uow, doc)
        image = atts[0]
        assert image.rendition_blob_key and not image.is_pdf  # a searchable PDF made by Tesseract
        with pymupdf.open(stream=await blobs.read(image.rendition_blob_key), filetype="pdf") as pdf:
            assert "Quảng Ninh" in pdf[0].get_text()
        assert atts[1].is_pdf and atts[1].rendition_blob_key is None and atts[1].scanned_pages == [1]


async def test_doc_claimed_as_pdf_is_detected_and_converted(db: Database, org: Org, blobs: BlobStore,
                                                            doc97: bytes) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        up = await upload(uow, clerk, blobs, doc97, "bao-cao.pdf", "application/pdf")
        doc, jobs = await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[up])
        await uow.commit()  # not refused as a broken PDF: its bytes say it is a Word 97 file
    assert len(jobs) == 1
    await _ingest(db, blobs, jobs)
    async with db.uow(readonly=True) as uow:
        (att,) = await attachments_of(uow, doc)
        assert not att.is_pdf and att.rendition_blob_key is not None
        text = await uow.session.scalar(select(Attachment.text).where(Attachment.id == att.id))
        assert DOC_TEXT in " ".join((text or "").split())
    assert await _hits(db, org, "tong ket thi dua khen thuong") == [doc.id]


@pytest.fixture
def tiny_limit() -> Iterator[None]:
    before = renditions.config()
    renditions.configure(dataclasses.replace(before, office_timeout=0.05))
    yield
    renditions.configure(before)


async def test_conversion_past_time_limit_fails_cleanly(db: Database, org: Org, blobs: BlobStore, docx: bytes,
                                                        tiny_limit: None) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        up1 = await upload(uow, clerk, blobs, docx, "qua-phuc-tap.docx", "application/octet-stream")
        up2 = await upload(uow, clerk, blobs, make_pdf(["Văn bản kèm theo về phòng cháy chữa cháy"]), "kem.pdf")
        doc, jobs = await register_incoming(uow, clerk, blobs, **incoming_fields(1), upload_ids=[up1, up2])
        await uow.commit()
    started = time.monotonic()
    await _ingest(db, blobs, jobs)
    assert time.monotonic() - started < 60
    async with db.uow(readonly=True) as uow:
        assert (await uow.session.get(Document, doc.id)) is not None and doc.number == 1  # registered
        failed = await uow.session.get(IngestJob, jobs[0])
        assert failed is not None and failed.status == "failed" and failed.error == renditions.TOO_COMPLEX
        other = await uow.session.get(IngestJob, jobs[1])
        assert other is not None and other.status == "done"  # the other work went on
        word, _ = await attachments_of(uow, doc)
        assert word.rendition_blob_key is None and await blobs.read(word.blob_key) == docx  # the original kept
    assert not glob.glob(f"{tempfile.gettempdir()}/eoffice-convert-*")  # its private profile removed
    assert await _hits(db, org, "phong chay chua chay") == [doc.id]


def test_zip_bomb_is_too_complex_before_libreoffice() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"<" + b"a" * (20 << 20) + b"/>")  # 20 MiB in ~20 KiB
    assert renditions.sniff(buf.getvalue()) == "docx" and renditions.zip_bomb(buf.getvalue())
    with pytest.raises(renditions.ConversionFailed) as info:
        run(renditions.render(buf.getvalue()))
    assert str(info.value) == renditions.TOO_COMPLEX


def test_conversion_past_memory_limit_is_too_complex(docx: bytes) -> None:
    small = dataclasses.replace(renditions.config(), memory=150 << 20)  # LibreOffice cannot even load in this
    with pytest.raises(renditions.ConversionFailed) as info:
        run(renditions.convert_office(docx, "docx", small))
    assert str(info.value) == renditions.TOO_COMPLEX and info.value.details["reason"] == "memory"
    with pytest.raises(renditions.ConversionFailed) as info:  # a damaged file is not "too complex"
        run(renditions.convert_office(b"PK\x03\x04" + b"hong" * 500, "docx"))
    assert str(info.value) == renditions.BROKEN


def test_missing_binary_says_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(renditions, "_config", renditions.Config(soffice="/khong/co/soffice"))
    assert not renditions.office_available()
    with pytest.raises(renditions.ConversionFailed) as info:
        run(renditions.render("Công văn".encode()))
    assert "chưa cài LibreOffice" in str(info.value)


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, tokens


def _register_docx(client: TestClient, tokens: dict[str, str], docx: bytes) -> int:
    auth = {"Authorization": f"Bearer {tokens['vanthu']}"}
    r = client.post("/api/files", content=docx, headers={**auth, "Content-Type": "application/octet-stream",
                                                         "X-Filename": quote("kế-hoạch.docx")})
    assert r.status_code == 201, r.text
    r = client.post("/api/documents/incoming", headers=auth, json={
        "sender": "Sở Nông nghiệp", "notation": "77/SNN-TL", "date_issued": "2026-01-05", "doc_type": "cong_van",
        "summary": "Công văn về việc chuẩn bị mùa mưa", "signer": "Lê Văn Hùng", "upload_ids": [r.json()["id"]]})
    assert r.status_code == 201, r.text
    return int(r.json()["document"]["id"])


def _page_when(client: TestClient, tokens: dict[str, str], doc_id: int, marker: str) -> str:
    """The document page once ``marker`` is on it (the app's ingest runner converts in the background)."""
    deadline = time.monotonic() + 120
    while True:
        page = client.get(f"/documents/{doc_id}", headers={"Authorization": f"Bearer {tokens['vanthu']}"})
        assert page.status_code == 200
        if marker in page.text or time.monotonic() > deadline:
            return page.text
        time.sleep(0.2)


def test_document_page_shows_failed_conversion(settings: Settings, docx: bytes) -> None:
    _, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    try:
        with TestClient(create_app(dataclasses.replace(settings, office_timeout=0.05)),
                        base_url="http://testserver") as client:
            doc_id = _register_docx(client, tokens, docx)
            page = _page_when(client, tokens, doc_id, 'data-conversion="failed"')
            r = client.get(f"/api/documents/{doc_id}", headers={"Authorization": f"Bearer {tokens['vanthu']}"})
    finally:
        renditions.configure(renditions.Config())
    assert renditions.TOO_COMPLEX in html.unescape(page)
    assert r.json()["document"]["number"] == 1 and not r.json()["attachments"][0]["has_rendition"]


def test_document_page_shows_conversion_status(world: tuple[TestClient, dict[str, str]], docx: bytes) -> None:
    client, tokens = world
    auth = {"Authorization": f"Bearer {tokens['vanthu']}"}
    doc_id = _register_docx(client, tokens, docx)
    page = _page_when(client, tokens, doc_id, 'data-conversion="done"')
    assert "Đã chuyển sang PDF để xem và tìm kiếm" in page
    att = client.get(f"/api/documents/{doc_id}", headers=auth).json()["attachments"][0]
    assert att["has_rendition"] and not att["is_pdf"]
    png = client.get(f"/api/attachments/{att['id']}/pages/1.png?width=300", headers=auth)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
