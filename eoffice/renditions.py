"""Documents as they really arrive (#16): office files converted to PDF, scans read by OCR.

Attachments that are not PDF (.doc, .docx, .xls, .xlsx, .odt, .ods, .txt, .rtf) are converted to a PDF
*rendition* with LibreOffice (headless); scanned images (PNG, JPEG, TIFF) get one from Tesseract (a searchable
PDF: the image with its recognised text under it). The rendition is stored as its own blob beside the original
(``Attachment.rendition_blob_key``), which is never changed; the page reader and the text extraction use the
rendition. PDF pages without a text layer (``pdfworker`` flags them as scanned) get their text by OCR too.

The file's claimed name and type are never trusted: ``sniff`` decides from its bytes (magic numbers, the names
inside a zip, the streams of an OLE2 file). Everything runs in the ingest background path (``eoffice.ingest``),
never in a request, each conversion in its own process group with a time limit and an address-space cap and its own
LibreOffice profile (``-env:UserInstallation``) so parallel conversions do not share a lock; past a limit the
group is killed and the job fails as "too complex", the original kept. Missing binaries make the feature report
"not available"; the rest works.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pymupdf

from eoffice import scan_prep, spawn
from storage.errors import Invalid

# ---- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    office: bool = True  # convert office files with LibreOffice
    ocr: bool = True  # OCR scanned images and PDF pages without text with Tesseract
    soffice: str = "soffice"  # command or path
    tesseract: str = "tesseract"
    office_timeout: float = 120.0  # seconds one conversion may take
    ocr_timeout: float = 120.0  # seconds the OCR of one image / page may take
    memory: int = 2048 << 20  # bytes of address space of a converter process
    languages: str = "vie"  # bench/ocr.py: "vie+eng" read Vietnamese pages worse (CER 0.0067 vs 0.0045)
    prepare_scans: bool = True  # straighten and despeckle a PNG / JPEG scan before Tesseract (eoffice.scan_prep)
    ocr_max_pages: int = 200  # scanned PDF pages read by OCR per file (the rest stay without text)
    processes: int = 1  # conversions / OCR runs at a time in this process


_config = Config()


def configure(config: Config) -> None:
    global _config
    _config = config


def config() -> Config:
    return _config


def config_from(settings: Any) -> Config:
    """The configuration a ``storage.settings.Settings`` asks for."""
    return Config(office=settings.office_enabled, ocr=settings.ocr_enabled, soffice=settings.soffice_path,
                  tesseract=settings.tesseract_path, office_timeout=settings.office_timeout,
                  ocr_timeout=settings.ocr_timeout, memory=settings.converter_memory_mb << 20,
                  languages=settings.ocr_languages, processes=settings.converter_processes)


def which(command: str) -> str | None:
    return shutil.which(command)


def office_available(cfg: Config | None = None) -> bool:
    cfg = cfg or _config
    return cfg.office and which(cfg.soffice) is not None


def ocr_available(cfg: Config | None = None) -> bool:
    cfg = cfg or _config
    return cfg.ocr and which(cfg.tesseract) is not None


# ---- what a file really is --------------------------------------------------------------------------

OFFICE = {"doc", "xls", "ppt", "docx", "xlsx", "pptx", "odt", "ods", "odp", "rtf", "txt"}
IMAGES = {"png", "jpg", "tif"}
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODF = {"application/vnd.oasis.opendocument.text": "odt", "application/vnd.oasis.opendocument.spreadsheet": "ods",
        "application/vnd.oasis.opendocument.presentation": "odp"}
_OOXML = {"word/document.xml": "docx", "xl/workbook.xml": "xlsx", "ppt/presentation.xml": "pptx"}
MEMORY_WORDS = ("alloc", "memory", "failed to map")  # what the loader, LibreOffice or Tesseract say past the cap
TXT_FONT = "Liberation Serif"  # a font with every Vietnamese letter (Times New Roman is often missing)
MAX_UNZIPPED = 256 << 20  # declared size of an office zip's contents: past this, a bomb (refused before LibreOffice)
MAX_RATIO = 300  # declared compression ratio past which an office zip is a bomb

NOT_AVAILABLE_OFFICE = ("Chưa chuyển đổi được: máy chủ chưa cài LibreOffice hoặc tính năng chuyển đổi đang tắt "
                        "(tệp gốc vẫn được lưu).")
NOT_AVAILABLE_OCR = ("Chưa nhận dạng chữ được: máy chủ chưa cài Tesseract hoặc tính năng OCR đang tắt "
                     "(tệp gốc vẫn được lưu).")
TOO_COMPLEX = "Không chuyển đổi được: tệp quá phức tạp (vượt giới hạn thời gian hoặc bộ nhớ). Tệp gốc vẫn được lưu."
UNSUPPORTED = "Định dạng tệp không đọc được trong trình xem (tệp gốc vẫn được lưu để tải về)."
BROKEN = "Không chuyển đổi được: tệp bị hỏng hoặc không đúng định dạng. Tệp gốc vẫn được lưu."


class ConversionFailed(Invalid):
    code = "conversion_failed"


HEAD = 4096  # bytes read up front to decide whether a file gets a job
MAGIC = (OLE2, b"PK\x03\x04", b"{\\rtf", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")


def candidate(head: bytes) -> bool:
    """Whether a file starting with ``head`` (``HEAD`` bytes) may give a rendition: worth a background job."""
    return bool(head) and not is_pdf(head) and (head.startswith(MAGIC) or _is_text(head, partial=True))


def is_pdf(head: bytes) -> bool:
    return b"%PDF-" in head[:1024]


def other_format(head: bytes) -> bool:
    """The magic number says the file is a known format other than PDF (an office file or image named .pdf).
    (Text is not enough: a damaged «.pdf» is still refused as a broken PDF.)"""
    return not is_pdf(head) and head.startswith(MAGIC)


def _is_text(data: bytes, partial: bool = False) -> bool:
    sample = data[:65536]
    if not sample.strip() or (b"\x00" in sample and not sample.startswith((b"\xff\xfe", b"\xfe\xff"))):
        return False
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not (partial or len(data) > len(sample)) or exc.start < len(sample) - 4:
            return False  # not cut in the middle of a character at the end of the sample
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls * 100 < len(sample)


def sniff(data: bytes) -> str:
    """The kind of ``data`` from its bytes: "pdf", an office kind (``OFFICE``), an image kind (``IMAGES``), "zip"
    (an archive that is no office file) or "" (unknown)."""
    if is_pdf(data[:1024]):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tif"
    if data.startswith(OLE2):
        if "WordDocument".encode("utf-16-le") in data:
            return "doc"
        if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
            return "xls"
        if "PowerPoint Document".encode("utf-16-le") in data:
            return "ppt"
        return ""
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
                if "mimetype" in names:
                    with zf.open("mimetype") as fh:
                        mime = fh.read(100).decode("ascii", "replace").strip()
                    if mime in _ODF:
                        return _ODF[mime]
                for inner, kind in _OOXML.items():
                    if inner in names:
                        return kind
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, ValueError):
            return ""
        return "zip"
    if data.startswith(b"{\\rtf"):
        return "rtf"
    if _is_text(data):
        return "txt"
    return ""


def zip_bomb(data: bytes) -> bool:
    """An office zip whose declared contents are past ``MAX_UNZIPPED`` or compressed past ``MAX_RATIO``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError):
        return False
    return total > MAX_UNZIPPED or (total > MAX_RATIO * max(len(data), 1) and total > (8 << 20))


# ---- running a converter --------------------------------------------------------------------------------


async def run(args: list[str], seconds: float, memory: int, cwd: str, env: dict[str, str] | None = None,
              stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run ``args`` in its own process group, with an address-space cap; past ``seconds`` the whole group
    is killed and ``TimeoutError`` raised. (returncode, stdout, stderr). Through ``eoffice.spawn``, not
    ``asyncio.create_subprocess_exec`` (a start-up freeze under uvloop, see there)."""
    return await spawn.run(spawn.limited(args, memory), env, input=stdin, seconds=seconds, cwd=cwd)


def _env(home: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TESSDATA_PREFIX")}
    return {**keep, "HOME": home, "OMP_THREAD_LIMIT": "1", "SAL_USE_VCLPLUGIN": "svp"}


async def convert_office(data: bytes, kind: str, cfg: Config | None = None) -> bytes:
    """The PDF LibreOffice makes of ``data`` (an office ``kind``), in a private profile and directory."""
    cfg = cfg or _config
    if not office_available(cfg):
        raise ConversionFailed(NOT_AVAILABLE_OFFICE, reason="not_available")
    if kind in ("docx", "xlsx", "pptx", "odt", "ods", "odp") and zip_bomb(data):
        raise ConversionFailed(TOO_COMPLEX, reason="zip_bomb")
    with tempfile.TemporaryDirectory(prefix="eoffice-convert-") as tmp:
        src = Path(tmp) / f"tep.{kind}"
        await anyio.Path(src).write_bytes(data)
        await anyio.Path(tmp, "out").mkdir()
        args = [which(cfg.soffice) or cfg.soffice, f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                "--invisible", "--nologo", "--norestore", "--nolockcheck", "--nodefault"]
        if kind == "txt":
            args.append(f"--infilter=Text (encoded):UTF8,LF,{TXT_FONT},vi")
        args += ["--convert-to", "pdf", "--outdir", f"{tmp}/out", str(src)]
        try:
            code, out, err = await run(args, cfg.office_timeout, cfg.memory, tmp, _env(tmp))
        except TimeoutError:
            raise ConversionFailed(TOO_COMPLEX, reason="timeout") from None
        pdf = anyio.Path(tmp, "out", "tep.pdf")
        if not await pdf.exists() or (await pdf.stat()).st_size == 0:
            text = (out + err).decode("utf-8", "replace").lower()
            if "could not be loaded" in text:  # LibreOffice read it and found no document it knows
                raise ConversionFailed(BROKEN, reason="broken")
            if code != 0 or any(word in text for word in MEMORY_WORDS):  # out of its address space, or crashed
                raise ConversionFailed(TOO_COMPLEX, reason="memory" if code != 0 else "failed")
            raise ConversionFailed(BROKEN, reason="broken")
        return await pdf.read_bytes()


async def ocr_image(data: bytes, kind: str, cfg: Config | None = None, want_pdf: bool = True) -> tuple[str, bytes]:
    """Tesseract on an image: its text and (``want_pdf``) a searchable PDF of it."""
    cfg = cfg or _config
    if not ocr_available(cfg):
        raise ConversionFailed(NOT_AVAILABLE_OCR, reason="not_available")
    # straightened and despeckled first; not a TIFF: it may have many pages
    if cfg.prepare_scans and kind in ("png", "jpg") and scan_prep.small_enough(data):
        prepared = await anyio.to_thread.run_sync(scan_prep.prepare, data)
        if prepared is not data:
            data, kind = prepared, "png"
    with tempfile.TemporaryDirectory(prefix="eoffice-ocr-") as tmp:
        src = Path(tmp) / f"anh.{kind}"
        await anyio.Path(src).write_bytes(data)
        args = [which(cfg.tesseract) or cfg.tesseract, str(src), f"{tmp}/out", "-l", cfg.languages, "txt"]
        if want_pdf:
            args.append("pdf")
        try:
            code, _, err = await run(args, cfg.ocr_timeout, cfg.memory, tmp, _env(tmp))
        except TimeoutError:
            raise ConversionFailed(TOO_COMPLEX, reason="timeout") from None
        txt, pdf = anyio.Path(tmp, "out.txt"), anyio.Path(tmp, "out.pdf")
        if code != 0 or not await txt.exists() or (want_pdf and not await pdf.exists()):
            message = err.decode("utf-8", "replace").lower()
            if code < 0 or any(word in message for word in MEMORY_WORDS):
                raise ConversionFailed(TOO_COMPLEX, reason="memory")
            raise ConversionFailed(BROKEN, reason="broken")
        return await txt.read_text("utf-8", "replace"), await pdf.read_bytes() if want_pdf else b""


def render_doc_page_png(doc: Any, page: int, dpi: int = 300) -> bytes:
    """Page ``page`` (1-based) of an open PDF as a greyscale PNG at ``dpi``, for OCR (in a PDF worker process,
    ``pdfsandbox.with_doc``)."""
    pix = doc[page - 1].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    return pix.tobytes("png")  # type: ignore[no-any-return]


# ---- what the ingest path calls -------------------------------------------------------------------------

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _slot() -> asyncio.Semaphore:
    """Conversions of this process run ``Config.processes`` at a time (each may take a core and its memory cap);
    a file's time limit counts from when it gets its turn."""
    loop = asyncio.get_running_loop()
    sem = _slots.get(loop)
    if sem is None:
        sem = _slots[loop] = asyncio.Semaphore(max(1, _config.processes))
    return sem


async def render(data: bytes) -> bytes:
    """The PDF rendition of a non-PDF file, by what its bytes are: LibreOffice for office files and text, a
    searchable PDF by Tesseract for images. ``ConversionFailed`` (in Vietnamese) otherwise."""
    kind = sniff(data)
    if kind not in OFFICE and kind not in IMAGES:
        raise ConversionFailed(UNSUPPORTED, reason="unsupported", kind=kind)
    async with _slot():
        if kind in IMAGES:
            return (await ocr_image(data, kind))[1]
        return await convert_office(data, kind)


async def ocr(png: bytes) -> str:
    """The text Tesseract reads on a page image (no PDF)."""
    async with _slot():
        return (await ocr_image(png, "png", want_pdf=False))[0]
