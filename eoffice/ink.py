"""Bút phê: what a leader writes by hand on a document's pages when directing it (issue 22 item 7), kept with
the direction and drawn over the pages wherever the direction is shown. The PDF itself is never changed.

Shape: ``[{"attachment_id": 7, "page": 1, "strokes": [[[x, y], [x, y], ...], ...]}, ...]`` where x and y are
fractions of the page's width and height (0..1): the ink stays on the same words at any rendering size. A pen's
pressure, when the client sends it as a third number, is kept (0..1)."""

from __future__ import annotations

import json
import math
from typing import Any

from storage.errors import Invalid

MAX_PAGES = 10
MAX_STROKES = 400
MAX_POINTS = 40_000  # in all: a page of handwriting is a few thousand


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid("Bút phê: tọa độ không hợp lệ.", field="ink")
    return float(value)


def _point(value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise Invalid("Bút phê: mỗi điểm gồm hai tọa độ (và lực nhấn bút).", field="ink")
    nums = [_num(v) for v in value]
    if not all(0.0 <= v <= 1.0 for v in nums):
        raise Invalid("Bút phê: nét vẽ nằm ngoài trang.", field="ink")
    return [round(v, 4) for v in nums]


def clean(value: Any, page_counts: dict[int, int]) -> list[dict[str, Any]] | None:
    """The ink as stored, or None when there is none. ``page_counts``: the document's viewable attachments
    (id -> pages); ink on anything else is refused. ``value`` may be the JSON text a form sends."""
    if value in (None, "", [], "[]"):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Invalid("Bút phê không đọc được.", field="ink") from None
    if not isinstance(value, list) or len(value) > MAX_PAGES:
        raise Invalid(f"Bút phê: tối đa {MAX_PAGES} trang.", field="ink")
    out: list[dict[str, Any]] = []
    strokes_total = points_total = 0
    for entry in value:
        if not isinstance(entry, dict):
            raise Invalid("Bút phê không hợp lệ.", field="ink")
        att, page = entry.get("attachment_id"), entry.get("page")
        if not isinstance(att, int) or att not in page_counts:
            raise Invalid("Bút phê trên một tệp không thuộc văn bản này.", field="ink")
        if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= max(1, page_counts[att]):
            raise Invalid("Bút phê trên một trang không có trong tệp.", field="ink")
        strokes = entry.get("strokes")
        if not isinstance(strokes, list):
            raise Invalid("Bút phê không hợp lệ.", field="ink")
        kept = []
        for stroke in strokes:
            if not isinstance(stroke, list) or not stroke:
                raise Invalid("Bút phê: nét vẽ rỗng.", field="ink")
            kept.append([_point(p) for p in stroke])
            strokes_total += 1
            points_total += len(stroke)
        if strokes_total > MAX_STROKES or points_total > MAX_POINTS:
            raise Invalid("Bút phê quá dài: hãy viết gọn hoặc ghi ý kiến bằng chữ.", field="ink")
        if kept:
            out.append({"attachment_id": att, "page": page, "strokes": kept})
    return out or None


def svg_paths(strokes: list[list[list[float]]], scale: float = 1000.0) -> list[str]:
    """Each stroke as an SVG path in a ``0 0 scale scale`` box (numbers only: safe in a template)."""
    paths = []
    for stroke in strokes:
        pts = [f"{p[0] * scale:.1f} {p[1] * scale:.1f}" for p in stroke]
        paths.append("M" + " L".join(pts) if len(pts) > 1 else f"M{pts[0]} l0.1 0")
    return paths
