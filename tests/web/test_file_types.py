"""web.file_types: the served type comes from the bytes and an allow-list, never from the name or declared type."""

from __future__ import annotations

import io
import zipfile

import pytest

from web.file_types import OCTET_STREAM, TAIL_BYTES, Served, clean_filename, content_disposition, sniff

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
HTML = b"<!doctype html><html><body><script>fetch('/api/tokens',{method:'POST'})</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
XHTML = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
         b"<script>alert(1)</script></body></html>")


def _zip(entries: dict[str, bytes], first_stored: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if first_stored:
            z.writestr(zipfile.ZipInfo(first_stored), entries.pop(first_stored), compress_type=zipfile.ZIP_STORED)
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _served(data: bytes, name: str = "tep") -> tuple[str, bool]:
    s = sniff(data[:4096], name, data[-TAIL_BYTES:])
    return s.content_type, s.inline


@pytest.mark.parametrize(("data", "name", "expected"), [
    (b"%PDF-1.7\n...", "bao-cao.html", ("application/pdf", False)),  # a PDF renamed .html is still a PDF
    (PNG, "anh.svg", ("image/png", True)),
    (b"\xff\xd8\xff\xe0JFIF", "anh.jpg", ("image/jpeg", True)),
    (b"GIF89a<script>alert(1)</script>", "x.html", ("image/gif", True)),  # a polyglot: an image, never a page
    (b"RIFF\x10\0\0\0WEBPVP8 ", "anh.webp", ("image/webp", True)),
    (HTML, "to-trinh.pdf", (OCTET_STREAM, False)),  # HTML claiming to be a PDF: a download
    (HTML, "trang.html", (OCTET_STREAM, False)),
    (SVG, "so-do.svg", (OCTET_STREAM, False)),  # SVG is a document that runs script: never an image here
    (XHTML, "trang.xhtml", (OCTET_STREAM, False)),
    (b"fetch('/api/tokens')", "x.js", (OCTET_STREAM, False)),
    (b"  %PDF-1.4 but not at the start", "x.pdf", (OCTET_STREAM, False)),
    (b"", "rong.pdf", (OCTET_STREAM, False)),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "cong-van.doc", ("application/msword", False)),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "bang.xls", ("application/vnd.ms-excel", False)),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "x.html", (OCTET_STREAM, False)),
])
def test_type_from_bytes(data: bytes, name: str, expected: tuple[str, bool]) -> None:
    assert _served(data, name) == expected


def test_office_zip_formats() -> None:
    docx = _zip({"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<r/>", "word/document.xml": b"<w/>"})
    xlsx = _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>"})
    pptx = _zip({"[Content_Types].xml": b"<Types/>", "ppt/presentation.xml": b"<p/>"})
    odt = _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<c/>"}, "mimetype")
    ods = _zip({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<c/>"}, "mimetype")
    assert _served(docx) == ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", False)
    assert _served(xlsx) == ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False)
    assert _served(pptx) == ("application/vnd.openxmlformats-officedocument.presentationml.presentation", False)
    assert _served(odt) == ("application/vnd.oasis.opendocument.text", False)
    assert _served(ods) == ("application/vnd.oasis.opendocument.spreadsheet", False)
    # a ZIP that is not an office file (or an ODF whose mimetype is compressed, against the standard)
    assert _served(_zip({"index.html": HTML}), "x.docx") == (OCTET_STREAM, False)
    assert _served(_zip({"mimetype": b"application/vnd.oasis.opendocument.text"}), "x.odt") == (OCTET_STREAM, False)
    # OOXML with a large part: the central directory at the end still names the parts
    big = _zip({"[Content_Types].xml": b"<Types/>", "word/media/anh.bin": bytes(range(256)) * 2000,
                "word/document.xml": b"<w/>"})
    assert _served(big)[0].endswith("wordprocessingml.document")


def test_filenames_are_cleaned_and_encoded() -> None:
    evil = "báo cáo\r\nSet-Cookie: x=1\u202egpj.exe\u200b"
    assert clean_filename(evil) == "báo cáoSet-Cookie: x=1gpj.exe"
    assert clean_filename("../../etc/passwd") == "_.._etc_passwd"
    assert clean_filename("\u202e\r\n") == "tep"
    header = content_disposition("attachment", "Công văn \"số 5\"; Đông Triều.pdf")
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="Cong van _so 5__ Dong Trieu.pdf"; filename*=UTF-8\'\'')
    assert header.endswith("C%C3%B4ng%20v%C4%83n%20%22s%E1%BB%91%205%22%3B%20%C4%90%C3%B4ng%20Tri%E1%BB%81u.pdf")
    header.encode("latin-1")  # a header value must be latin-1 (ASCII here)


def test_meeting_recordings_are_webm_downloads() -> None:
    """The EBML header of a WebM file (meetings.sfu.recording): its tracks' codec ids say video or sound."""
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm"
    assert sniff(ebml + b"\x00" * 64 + b"\x86\x85V_VP8", "ghi-hinh.webm") == Served("video/webm", False)
    assert sniff(ebml + b"\x00" * 64 + b"\x86\x86A_OPUS", "ghi-hinh.webm") == Served("audio/webm", False)
    matroska = ebml.replace(b"\x84webm", b"\x88matroska")
    assert sniff(matroska + b"\x86\x85V_VP8") == Served(OCTET_STREAM, False), "only WebM, nothing else from EBML"
