"""What a stored file is, decided by the server from its bytes; never from what the uploader (or another
agency's edXML package) declared.

Only an allow-list gets a real type: PDF, raster images (PNG, JPEG, GIF, WebP; never SVG, which is a
document that runs script), office formats and WebM (the meeting's video recordings). Only the images are
shown ``inline``; PDFs, office files, recordings and everything else are downloads. Anything not recognised
is ``application/octet-stream``.
Pure functions, no I/O: ``web.file_response`` reads the head (and, for a ZIP, the tail) and asks here.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

OCTET_STREAM = "application/octet-stream"
HEAD_BYTES = 4096  # enough for every magic number below and an ODF ``mimetype`` entry
TAIL_BYTES = 64 * 1024  # a ZIP's central directory (names of its entries) for an ordinary office file

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska / WebM (meeting recordings, meetings.sfu.recording)

_OLE_TYPES = {  # an OLE2 compound file: which one is only told by the name; all are downloads anyway
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
}
_OOXML = {  # a part only that format has, next to [Content_Types].xml
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_ODF = {
    b"application/vnd.oasis.opendocument.text": "application/vnd.oasis.opendocument.text",
    b"application/vnd.oasis.opendocument.spreadsheet": "application/vnd.oasis.opendocument.spreadsheet",
    b"application/vnd.oasis.opendocument.presentation": "application/vnd.oasis.opendocument.presentation",
}


@dataclass(frozen=True)
class Served:
    """How to serve a file: its Content-Type and whether the browser may show it (inline) or must save it."""

    content_type: str
    inline: bool


def sniff(head: bytes, filename: str = "", tail: bytes = b"") -> Served:
    """The type of a file from its first bytes (``head``, at least ``HEAD_BYTES`` when the file is that long)
    and, for a ZIP, its last ``TAIL_BYTES`` (``tail``). ``filename`` only chooses among the OLE2 types."""
    if head.startswith(b"%PDF-"):
        # a download: Chrome refuses to start its PDF viewer in a sandboxed document ("blocked by Chrome"), and
        # every file answer is sandboxed; the app's own reader shows PDFs as page images
        return Served("application/pdf", False)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Served("image/png", True)
    if head.startswith(b"\xff\xd8\xff"):
        return Served("image/jpeg", True)
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Served("image/gif", True)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Served("image/webp", True)
    if head.startswith(OLE2_MAGIC):
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        return Served(_OLE_TYPES.get(ext, OCTET_STREAM), False)
    if head.startswith(ZIP_MAGIC):
        return Served(_zip_type(head, tail), False)
    if head.startswith(EBML_MAGIC) and b"\x42\x82\x84webm" in head[:64]:  # EBML DocType "webm": a recording
        return Served("video/webm" if b"V_VP" in head else "audio/webm", False)
    return Served(OCTET_STREAM, False)


def _zip_type(head: bytes, tail: bytes) -> str:
    odf = _odf_mimetype(head)
    if odf is not None:
        return _ODF.get(odf, OCTET_STREAM)
    names = zip_names(tail)
    if "[Content_Types].xml" in names:
        for prefix, ctype in _OOXML.items():
            if any(n.startswith(prefix) for n in names):
                return ctype
    return OCTET_STREAM


def _odf_mimetype(head: bytes) -> bytes | None:
    """The content of an ODF package's first entry ``mimetype`` (stored, uncompressed, as the ODF standard
    requires), or None when the first entry is something else."""
    if len(head) < 30:
        return None
    method, = struct.unpack_from("<H", head, 8)
    size, name_len, extra_len = struct.unpack_from("<I", head, 18)[0], *struct.unpack_from("<HH", head, 26)
    start = 30 + name_len + extra_len
    if method != 0 or head[30:30 + name_len] != b"mimetype" or size > 100:
        return None
    return head[start:start + size]


def zip_names(tail: bytes) -> set[str]:
    """Entry names found in the central-directory records within ``tail`` (the end of a ZIP file)."""
    names: set[str] = set()
    pos = tail.find(b"PK\x01\x02")
    while pos != -1 and pos + 46 <= len(tail):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", tail, pos + 28)
        names.add(tail[pos + 46:pos + 46 + name_len].decode("utf-8", "replace"))
        pos = tail.find(b"PK\x01\x02", pos + 46 + name_len + extra_len + comment_len)
    return names


# ---- file names in Content-Disposition ---------------------------------------------------------------------

_UNSAFE_ASCII = re.compile(r'[^A-Za-z0-9._ ()\[\]+-]')


def clean_filename(name: str, fallback: str = "tep") -> str:
    """The name without control characters (CR, LF, NUL), format characters (right-to-left override and the
    other bidi controls, zero-width characters), path separators or leading dots; ``fallback`` if nothing is
    left."""
    name = unicodedata.normalize("NFC", name or "")
    kept = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    kept = kept.replace("/", "_").replace("\\", "_").strip().lstrip(".")
    return kept[:200] or fallback


def content_disposition(kind: str, name: str, fallback: str = "tep") -> str:
    """``kind; filename="ascii"; filename*=UTF-8''percent-encoded`` (RFC 6266 / RFC 5987), safe for any name."""
    clean = clean_filename(name, fallback)
    folded = unicodedata.normalize("NFKD", clean.replace("đ", "d").replace("Đ", "D"))
    ascii_name = folded.encode("ascii", "ignore").decode()
    ascii_name = _UNSAFE_ASCII.sub("_", ascii_name).strip() or fallback
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean, safe='')}"
