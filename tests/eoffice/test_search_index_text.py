"""The index's text is built fast (issue #4) and means exactly what it meant before.

- ``textfold.folded_words`` (C-level passes) gives the words the former per-character fold gave:
  compared here over every Unicode code point and over mixed Vietnamese text;
- ``search.tsvector_literal`` (the vector built in Python rather than by PostgreSQL's parser) is
  equal to ``to_tsvector('simple', ...)`` of the same text, limits and parser quirks included,
  and a document indexed with it is found by the words PostgreSQL's own query parser reads.
"""

from __future__ import annotations

import random
import re
import unicodedata

from sqlalchemy import text

from eoffice import search
from eoffice.documents import register_incoming
from eoffice.textfold import folded_words, strip_marks, words
from storage.db import Database
from tests.conftest import require
from tests.eoffice.conftest import Org, incoming_fields

_WORD = re.compile(r"[0-9a-z]+")


def reference_words(value: str) -> list[str]:
    """The former implementation: NFC, a dict translate per character, lower, findall."""
    return _WORD.findall(strip_marks(value).lower())


def test_folded_words_equal_the_former_fold_over_every_code_point() -> None:
    for lo in range(0, 0x110000, 0x8000):
        chars = [chr(c) for c in range(lo, lo + 0x8000) if not 0xD800 <= c < 0xE000]
        # each character inside a word, at its start, between digits and doubled after a capital
        sample = " ".join(f"a{c}b {c}1 X{c}{c}y" for c in chars)
        assert words(sample) == reference_words(sample), f"U+{lo:04X}..U+{lo + 0x7FFF:04X}"


def test_folded_words_of_vietnamese_text_composed_or_not() -> None:
    rng = random.Random(2026)
    pieces = ["Ủy ban nhân dân", "huyện Đông Triều", "QĐ-UBND", "số 123/2026", "Hỏa tốc", "Đắk Lắk", "«trích yếu»",
              "ngày 05/01", "naïve", "ﬁle", "İstanbul", "\u212a", "e\u0301\u0323", "ĐĂNG KÝ", "\t\n\f", "–", "x²"]
    for _ in range(300):
        value = "".join(rng.choice(pieces) + rng.choice(["", " ", ",", "\u0301"]) for _ in range(rng.randint(0, 12)))
        for form in (value, unicodedata.normalize("NFD", value), unicodedata.normalize("NFC", value)):
            assert words(form) == reference_words(value)
            assert folded_words(form) == " ".join(reference_words(value))
    assert folded_words("Công văn về việc triển khai chính quyền điện tử") == \
        "cong van ve viec trien khai chinh quyen dien tu"
    assert words("Số 123/UBND-VX, ngày 05/01") == ["so", "123", "ubnd", "vx", "ngay", "05", "01"]


def _bodies() -> list[str]:
    rng = random.Random(4)
    out = [search.index_text("Ủy ban nhân dân huyện Đông Triều triển khai chính quyền điện tử, chuyển đổi số "
                             "năm 2026, Quyết định số 5e3/QĐ-UBND, 1e5a, 10e, 3e0x.") * 40]
    for _ in range(150):  # words the default parser reads as numbers, words, or both
        alphabet = rng.choice(["0123456789e", "0123456789eax", "e1", "0123456789", "abcde"])
        out.append(" ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
                            for _ in range(rng.randint(1, 40))))
    out.append(" ".join(["thu"] * 300 + ["moi"]))  # past 255 positions of one lexeme
    out.append(" ".join(f"w{i % 700}" for i in range(20_000)))  # past position 16383
    out.append(" ".join(f"w{i % 3}" for i in range(17_000)) + " zz w1")
    out.append("a " + "b" * 2046 + " c " + "d" * 2047 + " e " + "f" * 2048 + " g")  # too long: left out
    out.append("")
    return out


async def test_tsvector_literal_is_what_postgresql_makes_of_the_text(pg_database: str | None) -> None:
    require("PostgreSQL", pg_database is not None, "127.0.0.1:5432")
    assert pg_database is not None
    db = Database(pg_database)
    try:
        async with db.uow(readonly=True) as uow:
            for body in _bodies():
                same = await uow.session.scalar(
                    text("SELECT to_tsvector('simple', CAST(:body AS text)) = CAST(:vector AS tsvector)"),
                    {"body": body, "vector": search.tsvector_literal(body)})
                assert same, body[:200]
    finally:
        await db.dispose()


async def test_documents_are_found_by_what_the_query_parser_reads(db: Database, org: Org) -> None:
    """'5e3x' is two tokens to PostgreSQL's parser ('5e3' and 'x', in a row): a document whose
    text has it is found by it as by any other word."""
    clerk = org["vanthu"]
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(1))  # type: ignore[arg-type]
        await search.index_document(uow, doc, texts=["Mẫu 5e3x của Sở Xây dựng, mã 1e5 và 12e."])
        other, _ = await register_incoming(uow, clerk, None, **incoming_fields(2))  # type: ignore[arg-type]
        await search.index_document(uow, other, texts=["Mẫu x 5e3 của Sở Tài chính."])
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        async def found(query: str) -> list[int]:
            return sorted(h.document.id for h in await search.search(uow, clerk, query))

        assert await found("mau 5e3x xay dung") == [doc.id]
        assert await found("1e5") == [doc.id]
        assert await found("12e") == [doc.id]
        # PostgreSQL's parser reads '5e3x' as '5e3', 'x'; SQLite's FTS5 keeps one token '5e3x'
        assert await found("5e3") == (sorted([doc.id, other.id]) if db.dialect == "postgresql" else [other.id])
        assert await found("so tai chinh") == [other.id]
