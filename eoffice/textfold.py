"""Vietnamese text folding for search and matching, and document notation (số, ký hiệu).

``fold("Công văn triển khai")`` is ``"cong van trien khai"``: decomposed to NFD, combining
marks dropped, đ/Đ mapped to d/D (đ is a letter of its own, not a d with a mark, so NFD keeps
it), lower-cased, whitespace collapsed. Text typed with composed or decomposed accents, or
without any, folds the same.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from eoffice.doctypes import BY_ABBR
from storage.errors import Invalid

_D = str.maketrans({"đ": "d", "Đ": "D"})
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-"})
_SPACE = re.compile(r"\s+")


def _base(c: str) -> str:
    return "".join(x for x in unicodedata.normalize("NFD", c) if unicodedata.category(x) != "Mn")


# Precomposed Latin letters with marks (Vietnamese lives in U+00C0..U+024F and U+1E00..U+1EFF)
# mapped to their base letters: one C-level str.translate instead of a Python loop per character.
_FAST = {ord(c): _base(c) for r in (range(0xC0, 0x250), range(0x1E00, 0x1F00)) for c in map(chr, r)
         if _base(c) != c and _base(c).isascii()}
_FAST.update({ord("đ"): "d", ord("Đ"): "D"})


def strip_marks(text: str) -> str:
    """Remove the diacritics, keep case."""
    out = unicodedata.normalize("NFC", text).translate(_FAST)
    if out.isascii():
        return out
    # anything left (combining marks on other letters): the slow, general path
    decomposed = unicodedata.normalize("NFD", out.translate(_D))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def fold(text: str) -> str:
    """Lower-case, diacritics-free, single-spaced text."""
    return _SPACE.sub(" ", strip_marks(text).lower()).strip()


# ``folded_words`` in four C-level passes instead of a dict lookup per character (str.translate
# with a dict: ~8 ms for the 80 000 characters of a 40-page document, most of indexing it):
# 1. NFD: every Vietnamese letter becomes its base letter and combining marks;
# 2. a charmap codec (the machinery of cp1252 & co.) encodes ASCII as itself, the marks
#    U+0300..U+036F as bytes 0x80..0xEF and đ/Đ as 0xF0/0xF1; any other character goes to
#    ``_unmapped``: removed if it is a combining mark elsewhere, a space (a word break) if not;
# 3. bytes.translate drops the marks' bytes, lower-cases, maps đ/Đ to d and anything that is
#    not [0-9a-z] to a space;
# 4. split and join: single spaces.
# The words are those of ``_WORD.findall(strip_marks(text).lower())`` (tests compare them over
# every code point): lower() maps no non-ASCII character to ASCII once NFD has decomposed
# U+0130 (İ) and U+212A (Kelvin sign).
_MARKS = range(0x300, 0x370)
_FOLD_CODEC = codecs.charmap_build(
    "".join(map(chr, range(128))) + "".join(map(chr, _MARKS)) + "đĐ" + "\ufffe" * (256 - 128 - len(_MARKS) - 2))
_FOLD_BYTES = bytes(
    b if 0x30 <= b <= 0x39 or 0x61 <= b <= 0x7A else b + 32 if 0x41 <= b <= 0x5A else 0x64 if b in (0xF0, 0xF1)
    else 0x20 for b in range(256))
_MARK_BYTES = bytes(range(0x80, 0x80 + len(_MARKS)))
_HANDLER = "eoffice.textfold"


def _unmapped(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chunk = exc.object[exc.start:exc.end]
    return "".join("" if unicodedata.category(c) == "Mn" else " " for c in chunk), exc.end


codecs.register_error(_HANDLER, _unmapped)


def folded_words(text: str) -> str:
    """``" ".join(words(text))``, fast: the index's text (see above)."""
    data, _ = codecs.charmap_encode(unicodedata.normalize("NFD", text), _HANDLER, _FOLD_CODEC)
    return b" ".join(data.translate(_FOLD_BYTES, _MARK_BYTES).split()).decode("ascii")


_WORD = re.compile(r"[0-9a-z]+")


def words(text: str) -> list[str]:
    """The folded words (letters and digits) of ``text``, for search queries and the index:
    the words of ``fold(text)``, the runs of [0-9a-z] in the lower-cased text without marks."""
    return folded_words(text).split()


def notation_key(notation: str) -> str:
    """Matching key of a notation: folded, upper case, no spaces, one kind of dash.

    ``"123/UBND–VX"``, ``"123 / ubnd-vx"`` and ``"123/UBND-VX"`` share a key, as do ``05/...``
    and ``5/...``.
    """
    key = _SPACE.sub("", strip_marks(notation.translate(_DASHES))).upper()
    m = re.match(r"^0*(\d+)/", key)
    return f"{m.group(1)}/{key[m.end():]}" if m else key


def sender_key(sender: str) -> str:
    return fold(sender)


@dataclass(frozen=True)
class Notation:
    number: int
    symbol: str  # everything after the number: "UBND-VX", "QĐ-UBND", "2024/QĐ-UBND"

    @property
    def abbr(self) -> str:
        """The document-type abbreviation if the symbol starts with one (``QĐ`` of ``QĐ-UBND``)."""
        head = self.symbol.rsplit("/", 1)[-1].split("-", 1)[0]
        return head if head in BY_ABBR and "-" in self.symbol else ""

    def __str__(self) -> str:
        return f"{format_number(self.number)}/{self.symbol}"


def format_number(number: int) -> str:
    """Decree 30 numbers start at 01: numbers under 10 take a leading zero."""
    return f"{number:02d}"


def format_notation(number: int, type_abbr: str, agency_code: str, unit_code: str = "") -> str:
    """``15/QĐ-UBND`` for a typed document; ``15/UBND-VX`` for a công văn (no type abbreviation,
    the drafting unit after the agency)."""
    if not agency_code:
        raise Invalid("Cơ quan ban hành chưa có chữ viết tắt.")
    if type_abbr:
        return f"{format_number(number)}/{type_abbr}-{agency_code}"
    return f"{format_number(number)}/{agency_code}" + (f"-{unit_code}" if unit_code else "")


_NOTATION = re.compile(r"^\s*(\d{1,7})\s*/\s*(\S(?:.*\S)?)\s*$")


def parse_notation(text: str) -> Notation:
    """``"123/UBND-VX"`` -> Notation(123, "UBND-VX"); ``"05/2024/NĐ-CP"`` keeps the year in the symbol."""
    m = _NOTATION.match(text.translate(_DASHES))
    if not m:
        raise Invalid(f"Số, ký hiệu không đúng dạng «số/ký hiệu»: «{text}».", field="notation")
    symbol = _SPACE.sub("", m.group(2))
    return Notation(int(m.group(1)), symbol)
