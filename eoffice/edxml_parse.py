"""Reading and writing edXML packages (QCVN 102:2016, edXML 2.0), with no database.

Safe parsing: lxml without network, DTD loading or entity resolution, and any DOCTYPE is refused
before parsing (no entity expansion bombs, no external entities). Real packages are messy, so:

- stray bytes or a byte order mark before ``<?xml`` (or before the first element) are dropped;
- undeclared namespace prefixes (``<edXML:Subject>`` without ``xmlns:edXML``) are declared on the
  root element and the document is read again; elements are always matched by local name;
- optional fields may be missing; the spec's spelling ``Bussiness``/``BussinessDocType`` and the
  corrected ``Business``/``BusinessDocType`` are both read.

What cannot be read unambiguously raises ``PackageError`` (an ``Invalid``) with a Vietnamese message
naming the element, and a short ``problem`` code the tests and the quarantine table use.

Identifiers: ``Business/DocumentId`` names the document the package is about (for a recall or an
update, the document acted on). A replacement (BusinessDocType 3) names the document it replaces in
``Business/ReplacementInfoList/ReplacementInfo/DocumentId`` or ``ResponseFor`` (Code, date, id).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from eoffice import edxml_signature
from eoffice.agency_time import AGENCY_TZ
from eoffice.edxml_attachments import read_attachments
from eoffice.edxml_xml import MAX_PACKAGE_BYTES, Attachment, PackageError, _child, _find, _local, _text

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
OLD_NS = "http://www.go.vn/eDoc"  # the earlier eDoc exchange format (EdXMLEnvelope, MessageHeader at the top)
LAYOUT_WRAPPED, LAYOUT_BARE, LAYOUT_EDOC = "edxml_wrapped", "edxml_envelope", "edoc_go_vn"

BUSINESS_NEW, BUSINESS_RECALL, BUSINESS_UPDATE, BUSINESS_REPLACE = 0, 1, 2, 3
BUSINESS_LABELS = {0: "Văn bản mới", 1: "Thu hồi", 2: "Cập nhật", 3: "Thay thế"}

STATUS_LABELS = {
    "01": "Đã đến (tiếp nhận)", "02": "Từ chối tiếp nhận", "03": "Đã tiếp nhận (vào sổ)", "04": "Đã phân công",
    "05": "Đang xử lý", "06": "Hoàn thành", "13": "Đề nghị thu hồi", "15": "Đồng ý thu hồi", "16": "Từ chối thu hồi",
}

# edXML OtherInfo/Priority: 0 thường, 1 khẩn, 2 thượng khẩn, 3 hỏa tốc, 4 hỏa tốc hẹn giờ
PRIORITY_TO_URGENCY = {"0": "thuong", "1": "khan", "2": "thuong_khan", "3": "hoa_toc", "4": "hoa_toc"}
URGENCY_TO_PRIORITY = {"thuong": "0", "khan": "1", "thuong_khan": "2", "hoa_toc": "3"}


@dataclass
class Organ:
    organ_id: str = ""
    name: str = ""


@dataclass
class Reference:
    """A document the package refers to (ResponseFor, ReplacementInfo)."""

    organ_id: str = ""
    notation: str = ""
    date: dt.date | None = None
    document_id: str = ""
    date_text: str = ""  # as written, also when it is not a real date (2014/02/30)


@dataclass
class StatusMessage:
    code: str
    description: str
    at: dt.datetime | None
    sender: Organ
    refers_to: Reference
    staff: str = ""  # StaffInfo: who handled it (department, name, contact)


@dataclass
class Package:
    sender: Organ = field(default_factory=Organ)
    recipients: list[Organ] = field(default_factory=list)
    code_number: str = ""
    code_notation: str = ""
    place: str = ""
    date_issued: dt.date | None = None
    type_code: str = ""
    type_name: str = ""
    subject: str = ""
    content: str = ""
    signer: str = ""
    signer_position: str = ""
    due_date: dt.date | None = None
    to_places: list[str] = field(default_factory=list)
    priority: str = ""
    steering_type: str = ""
    page_amount: int | None = None
    business_type: int = BUSINESS_NEW
    business_reason: str = ""
    document_id: str = ""
    refers_to: Reference | None = None
    attachments: list[Attachment] = field(default_factory=list)
    status: StatusMessage | None = None
    recovered: list[str] = field(default_factory=list)  # what was repaired while reading
    layout: str = LAYOUT_BARE
    trace: list[tuple[str, str]] = field(default_factory=list)  # TraceHeaderList: (OrganId, Timestamp)
    signature: Any = None  # eoffice.edxml_signature.SignatureCheck, set by parse()

    @property
    def notation(self) -> str:
        return join_notation(self.code_number, self.code_notation)

    @property
    def urgency(self) -> str:
        return PRIORITY_TO_URGENCY.get(self.priority.strip(), "thuong")


def join_notation(number: str, notation: str) -> str:
    number, notation = number.strip(), notation.strip()
    if not notation:
        return number
    if not number or notation.startswith(number + "/"):
        return notation
    return f"{number}/{notation}"


def split_notation(notation: str) -> tuple[str, str]:
    number, sep, rest = notation.partition("/")
    return (number, rest) if sep else ("", notation)


# ---- reading ------------------------------------------------------------------------------------

_DOCTYPE = re.compile(rb"<!DOCTYPE(.*?)(\]\s*>|>)", re.S | re.I)
_PREFIX_USE = re.compile(rb"</?([A-Za-z_][\w.-]*):[A-Za-z_]|\s([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*\s*=")
_PREFIX_DECL = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
_FIRST_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def _clean_start(data: bytes, recovered: list[str]) -> bytes:
    decl = data.find(b"<?xml")
    start = decl if decl >= 0 else data.find(b"<")
    if start < 0:
        raise PackageError("Tệp không phải gói tin edXML (không có nội dung XML).", "not_xml")
    if start > 0:
        recovered.append(f"bỏ {start} byte lạ trước khai báo XML")
        data = data[start:]
    return data


def _refuse_dtd(data: bytes) -> None:
    m = _DOCTYPE.search(data)
    if m is None:
        return
    body = m.group(1)
    if re.search(rb"\b(SYSTEM|PUBLIC)\b", body):
        raise PackageError("Gói tin tham chiếu thực thể hoặc DTD bên ngoài (SYSTEM/PUBLIC): không được phép.",
                           "external_entity")
    if b"<!ENTITY" in body.upper():
        raise PackageError("Gói tin khai báo thực thể XML (<!ENTITY>): không được phép (nguy cơ bom mở rộng "
                           "thực thể).", "entity_declaration")
    raise PackageError("Gói tin chứa khai báo DOCTYPE: không được phép.", "doctype")


def _declare_prefixes(data: bytes, recovered: list[str]) -> bytes:
    used = {p for pair in _PREFIX_USE.findall(data) for p in pair if p} - {b"xml", b"xmlns"}
    missing = sorted(used - set(_PREFIX_DECL.findall(data)))
    m = _FIRST_TAG.search(data, data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0)
    if not missing or m is None:
        return data
    decls = b"".join(b' xmlns:%s="%s"' % (p, (NS if p.lower() == b"edxml" else f"urn:undeclared:{p.decode()}")
                                          .encode()) for p in missing)
    recovered.append("khai báo bổ sung tiền tố không gian tên: " + ", ".join(p.decode() for p in missing))
    return data[:m.end()] + decls + data[m.end():]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse_xml(data: bytes) -> tuple[etree._Element, list[str]]:
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageError("Gói tin quá lớn.", "too_large")
    recovered: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = _clean_start(data, recovered)
    _refuse_dtd(data)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        if "Namespace prefix" not in str(exc):
            raise PackageError(f"Gói tin XML sai cú pháp hoặc bị cắt cụt: {exc}", "syntax") from None
        try:
            root = etree.fromstring(_declare_prefixes(data, recovered), _parser())
        except etree.XMLSyntaxError as exc2:
            raise PackageError(f"Gói tin XML sai cú pháp (không khôi phục được tiền tố): {exc2}", "syntax") from None
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise PackageError("Gói tin dùng tham chiếu thực thể XML chưa khai báo: không được phép.", "entity_reference")
    if _local(root) not in ("edXMLEnvelope", "edXML", "EdXMLEnvelope"):
        raise PackageError(f"Phần tử gốc phải là edXML hoặc edXMLEnvelope (QCVN 102:2016), không phải "
                           f"«{_local(root)}».", "not_edxml")
    return root, recovered


def parse_date(value: str, where: str) -> dt.date | None:
    value = value.strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(value[:10].strip(), fmt).date()
        except ValueError:
            continue
    raise PackageError(f"Ngày không hợp lệ ({where}): «{value[:40]}».", "bad_date", field=where)


def parse_datetime(value: str, where: str) -> dt.datetime | None:
    value = value.strip()
    if not value:
        return None
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        for fmt in ("%d/%m/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%d/%m/%Y"):
            try:
                parsed = dt.datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise PackageError(f"Thời điểm không hợp lệ ({where}): «{value[:40]}».", "bad_date", field=where)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=AGENCY_TZ)
    return parsed


def _organ(el: etree._Element | None) -> Organ:
    return Organ(organ_id=_text(el, "OrganId"), name=_text(el, "OrganName"))


def _reference(el: etree._Element | None, where: str, recovered: list[str] | None = None) -> Reference | None:
    """A referenced document. Its date is only a hint to find it: a date that does not exist
    (2014/02/30, seen in real packages) is kept as text and noted, not refused."""
    if el is None:
        return None
    code = _child(el, "Code")
    notation = join_notation(_text(code, "CodeNumber"), _text(code, "CodeNotation")) if code is not None else ""
    if code is not None and not notation:
        notation = _text(code)
    date_text = _text(el, "PromulgationDate")
    try:
        date = parse_date(date_text, f"{where}/PromulgationDate")
    except PackageError:
        date = None
        if recovered is not None:
            recovered.append(f"bỏ qua ngày không hợp lệ trong {where}/PromulgationDate: «{date_text[:40]}»")
    ref = Reference(organ_id=_text(el, "OrganId"), notation=notation, date=date,
                    document_id=_text(el, "DocumentId"), date_text=date_text[:40])
    return ref if (ref.notation or ref.document_id) else None


def _envelope_parts(root: etree._Element, recovered: list[str]) -> tuple[str, etree._Element]:
    """(layout, header) for the three layouts met in practice; for eDoc the header is MessageHeader."""
    ns = etree.QName(root).namespace or ""
    if ns == OLD_NS or _local(root) == "EdXMLEnvelope":
        message = _child(root, "MessageHeader")
        if message is None:
            raise PackageError("Gói tin định dạng eDoc cũ (http://www.go.vn/eDoc, EdXMLEnvelope) thiếu MessageHeader: "
                               "không đọc được.", "old_edoc_format")
        recovered.append("đọc gói tin định dạng eDoc cũ (http://www.go.vn/eDoc)")
        return LAYOUT_EDOC, message
    layout, envelope = LAYOUT_BARE, root
    if _local(root) == "edXML":
        layout = LAYOUT_WRAPPED
        found = _child(root, "edXMLEnvelope")
        if found is None:
            raise PackageError("Gói tin edXML không có edXMLEnvelope bên trong phần tử gốc edXML.", "missing_envelope")
        envelope = found
    header = _child(envelope, "edXMLHeader")
    if header is None:
        raise PackageError("Thiếu phần đầu gói tin (edXMLHeader).", "missing_header")
    return layout, header


def parse(data: bytes) -> Package:
    """Read a package (document or status message); PackageError names what is wrong."""
    root, recovered = parse_xml(data)
    layout, header = _envelope_parts(root, recovered)
    signature = edxml_signature.verify(root)
    status_el = _find(header, "Status")
    message = header if layout == LAYOUT_EDOC else _child(header, "MessageHeader")
    if layout != LAYOUT_EDOC and message is None and status_el is not None:
        status_pkg = _parse_status(status_el, recovered)
        status_pkg.layout, status_pkg.signature = layout, signature
        return status_pkg
    if message is None:
        raise PackageError("Thiếu thông tin văn bản (edXMLHeader/MessageHeader).", "missing_header")
    _refuse_repeats(message, ("From", "Code", "PromulgationInfo", "DocumentType", "Subject", "DueDate", "OtherInfo",
                              "ResponseFor"))
    pkg = Package(recovered=recovered, layout=layout, signature=signature)
    pkg.sender = _organ(_child(message, "From"))
    if not pkg.sender.name:
        raise PackageError("Thiếu tên cơ quan gửi (From/OrganName).", "missing_sender")
    pkg.recipients = [_organ(t) for t in message if _local(t) == "To"]
    code = _child(message, "Code")
    pkg.code_number, pkg.code_notation = _text(code, "CodeNumber"), _text(code, "CodeNotation")
    if not pkg.code_number:
        raise PackageError("Thiếu số, ký hiệu văn bản (Code/CodeNumber).", "missing_code")
    pkg.place = _text(message, "PromulgationInfo", "Place")
    pkg.date_issued = parse_date(_text(message, "PromulgationInfo", "PromulgationDate"),
                                 "PromulgationInfo/PromulgationDate")
    if pkg.date_issued is None:
        raise PackageError("Thiếu ngày ban hành (PromulgationInfo/PromulgationDate).", "missing_date")
    pkg.type_code = _text(message, "DocumentType", "Type")
    pkg.type_name = _text(message, "DocumentType", "TypeName")
    doc_type = _child(message, "DocumentType")
    if not pkg.type_name and doc_type is not None and len(doc_type) == 0:
        pkg.type_name = _text(doc_type)  # eDoc: <DocumentType>Công văn</DocumentType>
    pkg.subject = _text(message, "Subject")
    if not pkg.subject:
        raise PackageError("Thiếu trích yếu nội dung (Subject).", "missing_subject")
    pkg.content = _text(message, "Content")
    signer = _child(message, "SignerInfo")
    pkg.signer = _text(signer, "FullName") or _text(signer, "Signer")
    pkg.signer_position = " ".join(x for x in (_text(signer, "Competence"), _text(signer, "Position")) if x)
    due_text = _text(message, "DueDate")
    try:
        pkg.due_date = parse_date(due_text, "DueDate")
    except PackageError:  # only a deadline hint: an impossible one is dropped and noted, not refused
        recovered.append(f"bỏ qua hạn xử lý không hợp lệ (DueDate): «{due_text[:40]}»")
    places = _child(message, "ToPlaces")
    pkg.to_places = [_text(p) for p in places if _text(p)] if places is not None else []
    other = _child(message, "OtherInfo")
    trace_list = _find(header, "TraceHeaderList")
    if trace_list is not None:
        pkg.trace = [(_text(t, "OrganId"), _text(t, "Timestamp") or _text(t, "Time"))
                     for t in trace_list.iter() if _local(t) == "TraceHeader"]
    pkg.priority = _text(other, "Priority")  # "" when absent: an update then keeps our urgency
    if pkg.priority and pkg.priority not in PRIORITY_TO_URGENCY:
        raise PackageError(f"Độ khẩn không hợp lệ (OtherInfo/Priority): «{pkg.priority[:20]}».", "bad_priority")
    pkg.steering_type = _text(other, "SteeringType") or _text(message, "SteeringType")
    pages = _text(other, "PageAmount")
    pkg.page_amount = int(pages) if (pages.isascii() and pages.isdigit()) else None
    business = _find(header, "Bussiness|Business")
    kind = _text(business, "BussinessDocType|BusinessDocType") if business is not None else ""
    if kind == "":
        kind = _text(_find(header, "BussinessDocType|BusinessDocType"))
    if kind not in ("", "0", "1", "2", "3"):
        raise PackageError(f"Loại nghiệp vụ không hợp lệ (BusinessDocType): «{kind[:20]}»; chỉ nhận 0 (mới), "
                           "1 (thu hồi), 2 (cập nhật), 3 (thay thế).", "bad_business_type")
    pkg.business_type = int(kind or 0)
    pkg.business_reason = _text(business, "BussinessDocReason|BusinessDocReason")
    pkg.document_id = (_text(business, "DocumentId") or _text(trace_list, "DocumentId")
                       or _text(message, "DocumentId"))
    replaced = _find(business, "ReplacementInfo") if business is not None else None
    pkg.refers_to = (_reference(replaced, "ReplacementInfo", recovered)
                     or _reference(_child(message, "ResponseFor"), "ResponseFor", recovered))
    if pkg.business_type == BUSINESS_REPLACE and pkg.refers_to is None:
        raise PackageError("Văn bản thay thế không nêu văn bản bị thay thế (ReplacementInfo hoặc ResponseFor).",
                           "missing_replaced")
    if pkg.business_type in (BUSINESS_RECALL, BUSINESS_UPDATE) and not pkg.document_id and not pkg.notation:
        raise PackageError("Gói thu hồi/cập nhật không nêu văn bản (Business/DocumentId).", "missing_document_id")
    pkg.attachments = read_attachments(root, recovered)
    if pkg.business_type in (BUSINESS_NEW, BUSINESS_REPLACE) and not pkg.attachments:
        raise PackageError("Gói tin không có tệp đính kèm (edXMLBody/Attachment).", "missing_attachment")
    return pkg


def _refuse_repeats(el: etree._Element, names: tuple[str, ...]) -> None:
    """Two different values for a field that has one (two Subjects, two Codes) is ambiguous."""
    seen: dict[str, bytes] = {}
    for c in el:
        name = _local(c)
        if name not in names:
            continue
        value = etree.tostring(c, method="c14n")
        if name in seen and seen[name] != value:
            raise PackageError(f"Gói tin có hai phần tử {name} khác nhau: không xác định được giá trị đúng.",
                               "ambiguous", element=name)
        seen[name] = value


def _parse_status(el: etree._Element, recovered: list[str]) -> Package:
    code = _text(el, "StatusCode")
    if (code.isascii() and code.isdigit()) and len(code) == 1:
        code = "0" + code
    if not ((code.isascii() and code.isdigit()) and len(code) == 2):
        raise PackageError(f"Mã trạng thái không hợp lệ (Status/StatusCode): «{code[:20]}».", "bad_status_code")
    ref = _reference(_child(el, "ResponseFor"), "ResponseFor", recovered)
    if ref is None:
        raise PackageError("Gói trạng thái không nêu văn bản (Status/ResponseFor).", "missing_reference")
    sender = _organ(_child(el, "From"))
    stamp = _text(el, "Timestamp")
    try:
        at = parse_datetime(stamp, "Status/Timestamp")
    except PackageError:
        at = None
        recovered.append(f"bỏ qua thời điểm không hợp lệ (Status/Timestamp): «{stamp[:40]}»")
    staff_el = _child(el, "StaffInfo")
    staff = " — ".join(_text(c) for c in staff_el if _text(c)) if staff_el is not None else ""
    status = StatusMessage(code=code, description=_text(el, "Description"), at=at, sender=sender,
                           refers_to=ref, staff=staff[:300])
    return Package(sender=sender, status=status, recovered=recovered)


# ---- writing ------------------------------------------------------------------------------------

def _e(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        el.text = text
    return el


def _envelope() -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{NS}}}edXMLEnvelope", nsmap={"edXML": NS})
    return root, _e(root, "edXMLHeader")


def _organ_el(parent: etree._Element, name: str, organ: Organ) -> None:
    el = _e(parent, name)
    _e(el, "OrganId", organ.organ_id)
    _e(el, "OrganName", organ.name)


def _xml(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def build(pkg: Package) -> bytes:
    root, header = _envelope()
    msg = _e(header, "MessageHeader")
    _organ_el(msg, "From", pkg.sender)
    for r in pkg.recipients:
        _organ_el(msg, "To", r)
    code = _e(msg, "Code")
    _e(code, "CodeNumber", pkg.code_number)
    _e(code, "CodeNotation", pkg.code_notation)
    info = _e(msg, "PromulgationInfo")
    _e(info, "Place", pkg.place)
    _e(info, "PromulgationDate", pkg.date_issued.isoformat() if pkg.date_issued else "")
    dtype = _e(msg, "DocumentType")
    _e(dtype, "Type", pkg.type_code or "1")
    _e(dtype, "TypeName", pkg.type_name)
    _e(msg, "Subject", pkg.subject)
    _e(msg, "Content", pkg.content)
    signer = _e(msg, "SignerInfo")
    _e(signer, "Competence", "")
    _e(signer, "Position", pkg.signer_position)
    _e(signer, "FullName", pkg.signer)
    if pkg.due_date:
        _e(msg, "DueDate", pkg.due_date.isoformat())
    places = _e(msg, "ToPlaces")
    for p in pkg.to_places:
        _e(places, "Place", p)
    other = _e(msg, "OtherInfo")
    _e(other, "Priority", pkg.priority or "0")
    if pkg.page_amount is not None:
        _e(other, "PageAmount", str(pkg.page_amount))
    if pkg.steering_type:
        _e(other, "SteeringType", pkg.steering_type)
    if pkg.refers_to is not None:
        _reference_el(msg, "ResponseFor", pkg.refers_to)
    trace = _e(header, "TraceHeaderList")
    business = _e(trace, "Bussiness")
    _e(business, "BussinessDocType", str(pkg.business_type))
    _e(business, "BussinessDocReason", pkg.business_reason)
    _e(business, "DocumentId", pkg.document_id)
    body = _e(root, "edXMLBody")
    for a in pkg.attachments:
        el = _e(body, "Attachment")
        _e(el, "ContentId", a.content_id or a.sha256[:32])
        _e(el, "ContentType", a.content_type)
        _e(el, "AttachmentName", a.name)
        _e(el, "Description", a.description)
        _e(el, "Value", base64.b64encode(a.data).decode())
    return _xml(root)


def _reference_el(parent: etree._Element, name: str, ref: Reference) -> None:
    el = _e(parent, name)
    _e(el, "OrganId", ref.organ_id)
    number, notation = split_notation(ref.notation)
    code = _e(el, "Code")
    _e(code, "CodeNumber", number)
    _e(code, "CodeNotation", notation)
    _e(el, "PromulgationDate", ref.date.isoformat() if ref.date else "")
    _e(el, "DocumentId", ref.document_id)


def build_status(status: StatusMessage) -> bytes:
    root, header = _envelope()
    el = _e(header, "Status")
    _reference_el(el, "ResponseFor", status.refers_to)
    _organ_el(el, "From", status.sender)
    _e(el, "StatusCode", status.code)
    _e(el, "Description", status.description or STATUS_LABELS.get(status.code, ""))
    _e(el, "Timestamp", (status.at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"))
    return _xml(root)
