"""Reference data and pure rules: no database."""

import unicodedata

import pytest

from eoffice import doctypes
from eoffice.textfold import fold, format_notation, notation_key, parse_notation, words
from storage.errors import Invalid


def test_decree_30_types_and_abbreviations() -> None:
    abbr = {t.name: t.abbr for t in doctypes.DOC_TYPES}
    assert abbr["Quyết định"] == "QĐ" and abbr["Quy định"] == "QYĐ" and abbr["Tờ trình"] == "TTr"
    assert abbr["Đề án"] == "ĐA" and abbr["Dự án"] == "DA" and abbr["Thư công"] == "TCg"
    assert abbr["Công văn"] == ""
    assert len(doctypes.DOC_TYPES) == 29
    assert len(doctypes.BY_CODE) == 29 and len(doctypes.BY_ABBR) == 28  # codes and abbreviations unique
    assert all(t.code.isascii() for t in doctypes.DOC_TYPES)
    with pytest.raises(Invalid, match="Loại văn bản"):
        doctypes.doc_type("QĐ")


def test_urgency_and_confidentiality_labels() -> None:
    assert [doctypes.URGENCY_LABELS[u] for u in doctypes.Urgency] == ["Thường", "Khẩn", "Thượng khẩn", "Hỏa tốc"]
    assert [doctypes.CONFIDENTIALITY_LABELS[c] for c in doctypes.Confidentiality] == [
        "Thường", "Mật", "Tối mật", "Tuyệt mật"]
    assert not doctypes.is_confidential("thuong") and doctypes.is_confidential("toi_mat")
    with pytest.raises(Invalid, match="Độ mật"):
        doctypes.confidentiality("secret")


def test_fold_strips_vietnamese_marks_and_d() -> None:
    assert fold("Công văn triển khai chính quyền điện tử") == "cong van trien khai chinh quyen dien tu"
    assert fold("ỦY BAN NHÂN DÂN huyện Đông Triều") == "uy ban nhan dan huyen dong trieu"
    decomposed = unicodedata.normalize("NFD", "Hỏa tốc Đắk Lắk")
    assert fold(decomposed) == fold("Hỏa tốc Đắk Lắk") == "hoa toc dak lak"
    assert fold("  nhiều   khoảng\ttrắng ") == "nhieu khoang trang"
    assert words("Số 123/UBND-VX, ngày 05/01") == ["so", "123", "ubnd", "vx", "ngay", "05", "01"]


def test_notation_format_and_parse() -> None:
    assert format_notation(15, "QĐ", "UBND") == "15/QĐ-UBND"
    assert format_notation(15, "", "UBND", "VX") == "15/UBND-VX"
    assert format_notation(5, "TB", "STTTT") == "05/TB-STTTT"
    n = parse_notation("123/UBND-VX")
    assert (n.number, n.symbol, n.abbr) == (123, "UBND-VX", "")
    n = parse_notation(" 05 / QĐ–UBND ")
    assert (n.number, n.symbol, n.abbr, str(n)) == (5, "QĐ-UBND", "QĐ", "05/QĐ-UBND")
    assert parse_notation("05/2024/NĐ-CP").symbol == "2024/NĐ-CP"
    with pytest.raises(Invalid, match="số/ký hiệu"):
        parse_notation("UBND-VX")
    assert notation_key("123 / ubnd–vx") == notation_key("123/UBND-VX") == "123/UBND-VX"
    assert notation_key("15/QĐ-UBND") == "15/QD-UBND"
    assert notation_key("05/TB-UBND") == notation_key("5/TB-UBND") == "5/TB-UBND"
    assert notation_key("00/TB") == "0/TB"
