"""Reference data of Decree 30/2020/NĐ-CP: document types (Appendix III), urgency, confidentiality.

Codes stored in the database are ASCII slugs (``quyet_dinh``), never the abbreviation: two
abbreviations fold to the same letters (ĐA Đề án, DA Dự án), and the abbreviation of a type is
printed, not keyed on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage.errors import Invalid


@dataclass(frozen=True)
class DocType:
    code: str
    name: str
    abbr: str  # "" for công văn, which carries no type abbreviation in its notation


DOC_TYPES: tuple[DocType, ...] = (
    DocType("nghi_quyet", "Nghị quyết", "NQ"),
    DocType("quyet_dinh", "Quyết định", "QĐ"),
    DocType("chi_thi", "Chỉ thị", "CT"),
    DocType("quy_che", "Quy chế", "QC"),
    DocType("quy_dinh", "Quy định", "QYĐ"),
    DocType("thong_cao", "Thông cáo", "TC"),
    DocType("thong_bao", "Thông báo", "TB"),
    DocType("huong_dan", "Hướng dẫn", "HD"),
    DocType("chuong_trinh", "Chương trình", "CTr"),
    DocType("ke_hoach", "Kế hoạch", "KH"),
    DocType("phuong_an", "Phương án", "PA"),
    DocType("de_an", "Đề án", "ĐA"),
    DocType("du_an", "Dự án", "DA"),
    DocType("bao_cao", "Báo cáo", "BC"),
    DocType("bien_ban", "Biên bản", "BB"),
    DocType("to_trinh", "Tờ trình", "TTr"),
    DocType("hop_dong", "Hợp đồng", "HĐ"),
    DocType("cong_dien", "Công điện", "CĐ"),
    DocType("ban_ghi_nho", "Bản ghi nhớ", "BGN"),
    DocType("ban_thoa_thuan", "Bản thỏa thuận", "BTT"),
    DocType("giay_uy_quyen", "Giấy ủy quyền", "GUQ"),
    DocType("giay_moi", "Giấy mời", "GM"),
    DocType("giay_gioi_thieu", "Giấy giới thiệu", "GGT"),
    DocType("giay_nghi_phep", "Giấy nghỉ phép", "GNP"),
    DocType("phieu_gui", "Phiếu gửi", "PG"),
    DocType("phieu_chuyen", "Phiếu chuyển", "PC"),
    DocType("phieu_bao", "Phiếu báo", "PB"),
    DocType("thu_cong", "Thư công", "TCg"),
    DocType("cong_van", "Công văn", ""),
)

BY_CODE: dict[str, DocType] = {t.code: t for t in DOC_TYPES}
BY_ABBR: dict[str, DocType] = {t.abbr: t for t in DOC_TYPES if t.abbr}
CONG_VAN = BY_CODE["cong_van"]
# the registration form's order: Công văn, the most used, first; then Decree 30's order
FORM_ORDER: tuple[DocType, ...] = (CONG_VAN, *(t for t in DOC_TYPES if t is not CONG_VAN))


def doc_type(code: str) -> DocType:
    try:
        return BY_CODE[code]
    except KeyError:
        raise Invalid(f"Loại văn bản không hợp lệ: «{code}».", field="doc_type") from None


class Urgency(enum.StrEnum):
    NORMAL = "thuong"
    URGENT = "khan"  # khẩn
    VERY_URGENT = "thuong_khan"  # thượng khẩn
    FLASH = "hoa_toc"  # hỏa tốc


URGENCY_LABELS = {
    Urgency.NORMAL: "Thường",
    Urgency.URGENT: "Khẩn",
    Urgency.VERY_URGENT: "Thượng khẩn",
    Urgency.FLASH: "Hỏa tốc",
}


class Confidentiality(enum.StrEnum):
    NORMAL = "thuong"
    SECRET = "mat"  # mật
    TOP_SECRET = "toi_mat"  # tối mật
    ABSOLUTE = "tuyet_mat"  # tuyệt mật


CONFIDENTIALITY_LABELS = {
    Confidentiality.NORMAL: "Thường",
    Confidentiality.SECRET: "Mật",
    Confidentiality.TOP_SECRET: "Tối mật",
    Confidentiality.ABSOLUTE: "Tuyệt mật",
}


def is_confidential(level: str) -> bool:
    return level != Confidentiality.NORMAL


def urgency(value: str) -> Urgency:
    try:
        return Urgency(value)
    except ValueError:
        raise Invalid(f"Độ khẩn không hợp lệ: «{value}».", field="urgency") from None


def confidentiality(value: str) -> Confidentiality:
    try:
        return Confidentiality(value)
    except ValueError:
        raise Invalid(f"Độ mật không hợp lệ: «{value}».", field="confidentiality") from None
