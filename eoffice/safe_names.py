"""File names that came from outside (edXML attachments, archives), made safe to store and show.

Pure: no I/O, no web imports. A received name keeps its readable Vietnamese letters and its
extension; what could hurt (path parts, control characters, reserved Windows names, leading dots,
characters that break a Content-Disposition header) is replaced, and the length is bounded in
bytes as well as characters.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*;]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_filename(name: str, fallback: str = "tep-dinh-kem") -> str:
    """A single path component, NFC, no control or separator characters, at most MAX_NAME_BYTES."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cf", "Cs", "Co"))
    name = _UNSAFE.sub("_", name).strip().strip(".").strip()
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.lower() in _RESERVED or name.lower() in _RESERVED:
        stem = "_" + (stem or name)
        name = f"{stem}.{ext}" if ext else stem
    if not name:
        return fallback
    ext = ext[:16]
    while len(name.encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
        if not stem:
            return fallback + (f".{ext}" if ext else "")
        name = f"{stem}.{ext}" if ext else stem
    return name


def extension(name: str) -> str:
    _, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""
