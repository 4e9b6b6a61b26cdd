"""Reading what a client sends: one parser for ids, integers, dates, strings and JSON bodies.

Every route and WebSocket command reads its input through these helpers, so bad input (an id
beyond the database's integer, a date in year 9999, a 1 MB title, JSON nested 100,000 deep, a
NUL byte PostgreSQL cannot store) becomes one clear Vietnamese ``Invalid`` (400) or ``NotFound``
(404) instead of an exception deep in a service or the database driver.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import HTTPConnection, Request

from storage.errors import Invalid, NotFound, TooLarge

ID_MAX = 2**31 - 1  # primary keys are INTEGER columns (32-bit on PostgreSQL)
INT_MAX = 2**31 - 1  # any other integer field (page, weight, seconds) is stored or used as a 32-bit value
MIN_YEAR, MAX_YEAR = 1900, 2100  # dates outside this are typing mistakes, and 9999 overflows date arithmetic
JSON_MAX_BYTES = 2 * 1024 * 1024  # a JSON request body (files go through /api/files, not JSON)
JSON_MAX_DEPTH = 32  # no API body nests deeper than a few levels
WS_MAX_BYTES = 256 * 1024  # one WebSocket command
# Characters a name shown to people or sent in a header must not carry: C0/C1 controls (CR, LF, NUL)
# and the bidirectional overrides that make "gpj.exe" look like "exe.jpg" (U+202A–U+202E, U+2066–U+2069).
_BAD_NAME_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _bad_text(value: str) -> str | None:
    """Why a string cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return "không được chứa ký tự NUL"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "chứa ký tự Unicode không hợp lệ"
    return None


def int_value(value: Any, field: str, *, optional: bool = False, minimum: int = 0,
              maximum: int = INT_MAX) -> int | None:
    """An integer from JSON (a number, or a numeric string as forms send) within [minimum, maximum]."""
    if value is None or value == "":
        if optional:
            return None
        raise Invalid(f"Thiếu giá trị «{field}».", field=field)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(f"Giá trị «{field}» phải là số nguyên.", field=field)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,19}", text):
            raise Invalid(f"Giá trị «{field}» phải là số nguyên.", field=field)
        value = int(text)
    if not minimum <= value <= maximum:
        raise Invalid(f"Giá trị «{field}» phải nằm trong khoảng {minimum}–{maximum}.", field=field)
    return value


def req_int(value: Any, field: str, *, minimum: int = 0, maximum: int = INT_MAX) -> int:
    result = int_value(value, field, minimum=minimum, maximum=maximum)
    assert result is not None
    return result


def id_value(value: Any, field: str, *, optional: bool = False) -> int | None:
    """A record id from a body: a positive integer that fits the database's key column."""
    return int_value(value, field, optional=optional, minimum=1, maximum=ID_MAX)


def req_id(value: Any, field: str) -> int:
    result = id_value(value, field)
    assert result is not None
    return result


def ids_value(value: Any, field: str, *, limit: int = 1000) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(f"«{field}» phải là một danh sách.", field=field)
    if len(value) > limit:
        raise Invalid(f"«{field}» có quá nhiều phần tử (tối đa {limit}).", field=field)
    return [req_id(v, field) for v in value]


def path_id(conn: HTTPConnection, name: str = "id") -> int:
    """An id from the URL (``{name:int}``): one that cannot exist is simply not found."""
    value = conn.path_params[name]
    if not isinstance(value, int):
        value = int_value(value, name)
    if not 1 <= value <= ID_MAX:
        raise NotFound("Không tìm thấy dữ liệu yêu cầu.")
    return value


def query_int(request: Request, name: str, default: int, *, minimum: int = 0, maximum: int = INT_MAX) -> int:
    """An integer query parameter; a malformed or out-of-range one is a 400, not a 500."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return req_int(raw, name, minimum=minimum, maximum=maximum)


def _check_year(value: dt.date, field: str) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise Invalid(f"Ngày «{field}» phải nằm trong khoảng năm {MIN_YEAR}–{MAX_YEAR}.", field=field)


def date_value(value: Any, field: str) -> dt.date | None:
    """An ISO date (YYYY-MM-DD) between MIN_YEAR and MAX_YEAR, or None when empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"Ngày «{field}» phải có dạng YYYY-MM-DD.", field=field)
    try:
        parsed = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"Ngày «{field}» phải có dạng YYYY-MM-DD.", field=field) from None
    _check_year(parsed, field)
    return parsed


def datetime_value(value: Any, field: str, tz: str | dt.tzinfo = "Asia/Ho_Chi_Minh") -> dt.datetime | None:
    """An ISO 8601 date-time; without an offset it is the agency's local time. None when empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"Thời điểm «{field}» không hợp lệ (ISO 8601).", field=field)
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"Thời điểm «{field}» không hợp lệ (ISO 8601).", field=field) from None
    _check_year(parsed, field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz) if isinstance(tz, str) else tz)
    return parsed


def str_value(value: Any, field: str, *, max_length: int, default: str = "") -> str:
    """A string field (None means ``default``) of at most ``max_length`` characters (the column's size)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise Invalid(f"«{field}» phải là chuỗi.", field=field)
    if len(value) > max_length:
        raise Invalid(f"«{field}» quá dài (tối đa {max_length} ký tự).", field=field)
    return value


def filename_value(value: Any, field: str = "filename", *, max_length: int = 255) -> str:
    """A file name as people will see it: no control characters (CR, LF, NUL), no direction overrides."""
    name = str_value(value, field, max_length=max_length).strip()
    if not name:
        raise Invalid("Thiếu tên tệp.", field=field)
    if _BAD_NAME_CHARS.search(name) or _bad_text(name) or unicodedata.category(name[0]) == "Cf":
        raise Invalid("Tên tệp chứa ký tự điều khiển hoặc ký tự đảo chiều văn bản, vui lòng đổi tên tệp.",
                      field=field)
    if name in (".", "..") or "/" in name or "\\" in name:
        raise Invalid("Tên tệp không hợp lệ.", field=field)
    return name


def _check_tree(data: Any) -> None:
    """Depth limit and storable strings over a parsed JSON value, without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            problem = _bad_text(node)
            if problem:
                raise Invalid(f"Nội dung JSON {problem}.")
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > JSON_MAX_DEPTH:
            raise Invalid(f"Nội dung JSON lồng nhau quá sâu (tối đa {JSON_MAX_DEPTH} cấp).")
        if isinstance(node, dict):
            for key, child in node.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in node)


def parse_json(text: str | bytes, *, max_bytes: int = JSON_MAX_BYTES,
               invalid: str = "Nội dung JSON không hợp lệ.") -> Any:
    """Parse JSON from a client: bounded size and depth, only strings a database can store."""
    if len(text) > max_bytes:
        raise TooLarge(f"Nội dung JSON vượt quá giới hạn {max_bytes // 1024} KB.", limit=max_bytes)
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise Invalid(invalid) from None
    except RecursionError:
        raise Invalid(f"Nội dung JSON lồng nhau quá sâu (tối đa {JSON_MAX_DEPTH} cấp).") from None
    _check_tree(data)
    return data


def parse_json_object(text: str | bytes, *, max_bytes: int = JSON_MAX_BYTES,
                      invalid: str = "Nội dung JSON không hợp lệ.",
                      not_object: str = "Nội dung JSON phải là một đối tượng.") -> dict[str, Any]:
    data = parse_json(text, max_bytes=max_bytes, invalid=invalid)
    if not isinstance(data, dict):
        raise Invalid(not_object)
    return data


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``), read within JSON_MAX_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > JSON_MAX_BYTES:
        raise TooLarge(f"Nội dung JSON vượt quá giới hạn {JSON_MAX_BYTES // 1024} KB.", limit=JSON_MAX_BYTES)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > JSON_MAX_BYTES:
            raise TooLarge(f"Nội dung JSON vượt quá giới hạn {JSON_MAX_BYTES // 1024} KB.", limit=JSON_MAX_BYTES)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later reads (request.body(), a second json_body) see the same bytes
    return parse_json_object(body) if body.strip() else {}
