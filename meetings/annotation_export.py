""""My annotated copy": the original PDF plus the annotations a person may see, as real PDF annotations.

Every annotation becomes a standard PDF annotation that other readers show, move, edit and delete
(nothing is burnt into the page images): a highlight on the word quads, ink with its strokes, a
text ("sticky note") annotation holding the note, a square, and a line with an arrow at its end.
The author (/T), subject, contents and dates are set, and /NM is ``eoffice-annotation-{id}`` so a
copy can be matched back to the rows.

The stored original is never touched: it is a content-addressed blob, read here and copied into a
scratch file. The annotations are appended to that copy with an *incremental update*
(``doc.save(path, incremental=True)``), so the copy begins with the original bytes unchanged and a
digital signature over them keeps verifying: the update only adds annotations (allowed by a
certification with /P 3 or no DocMDP restriction; a certification with /P 1 or 2 forbids them,
and a strict validator will say so). When MuPDF had to repair the file (broken cross-reference
table) an incremental update is impossible and the copy is written whole; ``method`` in the
result says which happened.

Text: notes are plain text in /Contents (PDF text strings are Unicode, so Vietnamese letters
survive whatever font the reader uses for its note pop-ups). Nothing is written into page
content; where an appearance needs letters, MuPDF builds it. Coordinates are stored in the page
as displayed (PyMuPDF's page.rect space); on a rotated page they are turned back into the
unrotated space the annotation dictionary uses.

All PyMuPDF work runs in the single PyMuPDF worker thread (``meetings.render.run``).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import pymupdf

from eoffice.org import User
from meetings import render
from meetings.annotations import KIND_LABELS, visible_rows
from meetings.documents import READ_LIMIT, Blobs, version_context
from meetings.schema import Document, DocumentVersion
from storage.db import UnitOfWork


@dataclass(frozen=True)
class Exported:
    data: bytes
    method: str  # "incremental" (original bytes kept as the file's prefix) | "full"
    count: int


def rgb(color: str) -> tuple[float, float, float]:
    c = color.lstrip("#")
    return int(c[0:2], 16) / 255, int(c[2:4], 16) / 255, int(c[4:6], 16) / 255


def pdf_date(iso: str) -> str:
    t = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return t.strftime("D:%Y%m%d%H%M%SZ")


def _add(page: pymupdf.Page, a: dict[str, Any]) -> pymupdf.Annot:
    m = page.derotation_matrix if page.rotation else pymupdf.Identity
    pt = lambda p: pymupdf.Point(p[0], p[1]) * m  # noqa: E731
    rect = lambda r: pymupdf.Rect(r) * m  # noqa: E731
    shape, kind, color = a["shape"], a["kind"], rgb(a["color"])
    if kind == "highlight":
        annot = page.add_highlight_annot(quads=[rect(r).quad for r in shape["rects"]])
        annot.set_colors(stroke=color)
    elif kind == "ink":
        annot = page.add_ink_annot([[tuple(pt(p)) for p in stroke] for stroke in shape["strokes"]])
        annot.set_colors(stroke=color)
        annot.set_border(width=shape["width"])
    elif kind == "note":
        annot = page.add_text_annot(pt(shape["at"]), a["text"] or " ", icon="Comment")
        annot.set_colors(stroke=color)
    elif kind == "rect":
        annot = page.add_rect_annot(rect(shape["rect"]))
        annot.set_colors(stroke=color)
        annot.set_border(width=shape["width"])
    elif kind == "arrow":
        annot = page.add_line_annot(pt(shape["from"]), pt(shape["to"]))
        annot.set_colors(stroke=color, fill=color)
        annot.set_border(width=shape["width"])
        annot.set_line_ends(pymupdf.mupdf.PDF_ANNOT_LE_NONE, pymupdf.mupdf.PDF_ANNOT_LE_CLOSED_ARROW)
    else:  # validated on the way in; an unknown kind from a newer server is skipped, not guessed
        raise ValueError(kind)
    content = a["text"] or (shape.get("quote", "") if kind == "highlight" else "")
    annot.set_info(title=a.get("owner_name", ""), subject=KIND_LABELS.get(kind, kind), content=content,
                   creationDate=pdf_date(a["created_at"]), modDate=pdf_date(a["updated_at"]))
    annot.update()
    doc = page.parent
    doc.xref_set_key(annot.xref, "NM", pymupdf.get_pdf_str(f"eoffice-annotation-{a['id']}"))
    return annot


def _build(original: bytes, annotations: list[dict[str, Any]], title: str) -> Exported:
    with tempfile.TemporaryDirectory(prefix="eo-annot-") as tmp:
        path = os.path.join(tmp, "copy.pdf")
        with open(path, "wb") as f:
            f.write(original)
        doc = pymupdf.open(path)
        try:
            count = 0
            for a in sorted(annotations, key=lambda x: (x["page"], x["id"])):
                if not 1 <= a["page"] <= doc.page_count:
                    continue
                try:
                    _add(doc[a["page"] - 1], a)
                except ValueError:
                    continue
                count += 1
            if doc.can_save_incrementally() and not doc.is_repaired:
                doc.save(path, incremental=True, encryption=pymupdf.mupdf.PDF_ENCRYPT_KEEP)
                method, out = "incremental", path
            else:
                out = os.path.join(tmp, "full.pdf")
                doc.save(out, garbage=1, deflate=True)
                method = "full"
        finally:
            doc.close()
        with open(out, "rb") as f:
            return Exported(f.read(), method, count)


async def build(original: bytes, annotations: list[dict[str, Any]], title: str = "") -> Exported:
    """The annotated copy of ``original`` (which is not modified), built in the PyMuPDF worker."""
    return await render.run(_build, original, annotations, title)


async def my_copy(uow: UnitOfWork, user: User, blobs: Blobs,
                  version_id: int) -> tuple[Document, DocumentVersion, Exported]:
    """(document, version, copy): the version with the annotations ``user`` may see (their own, those
    shared with the meeting, those shared with them); nobody else's private ones."""
    _ctx, doc, version = await version_context(uow, user, int(version_id))
    rows = await visible_rows(uow, user, version.id, "all")
    return doc, version, await copy_of(blobs, doc, version, rows)


async def copy_of(blobs: Blobs, doc: Document, version: DocumentVersion, rows: list[dict[str, Any]]) -> Exported:
    """The annotated copy of ``version`` with ``rows`` (already filtered for the reader). Needs no
    database: a caller may read ``rows`` in a short transaction and build after it has ended."""
    original = await blobs.read(version.blob_key, limit=READ_LIMIT)
    return await build(original, rows, doc.title)
