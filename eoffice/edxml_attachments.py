"""Attachments of an edXML package, in the layouts real software writes.

- Bare envelope (our own export, some vendors): ``edXMLBody/Attachment`` with ``ContentId``,
  ``ContentType``, ``AttachmentName``, ``Description`` and the base64 data in ``Value``.
- Outer ``edXML`` root (the national platform's SDKs): ``edXMLBody/edXMLManifest/Reference``
  lists each attachment (``ContentId`` such as ``cid:209``, or ``xlink:href``), and the data sits
  beside the envelope in ``AttachmentEncoded/Attachment/ContentTransferEncoded``, matched by content
  id (with or without the ``cid:`` prefix or angle brackets).
- Older ``http://www.go.vn/eDoc`` packages: ``Manifest/Attachment`` with ``FileName``, ``FileType``
  and ``Content``.

Names are made safe (``eoffice.safe_names``). Some gateways zip each file before encoding it while
keeping its own name (``quyet-dinh.pdf`` holding a one-entry zip): such a file is unwrapped, within
the package size limit, and the repair is noted.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile

from lxml import etree

from eoffice.edxml_xml import MAX_PACKAGE_BYTES, Attachment, PackageError, _child, _local, _text
from eoffice.safe_names import extension, safe_filename

XLINK = "http://www.w3.org/1999/xlink"
_DATA = ("Value", "ContentTransferEncoded", "Data", "Content")
MAX_ATTACHMENTS = 200
_ZIP_BASED = {"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "jar", "epub", "xps", "ofd", "apk"}


def norm_cid(value: str) -> str:
    value = value.strip().strip("<>").strip()
    return value[4:].strip() if value.lower().startswith("cid:") else value


def _data_child(el: etree._Element) -> etree._Element | None:
    return _child(el, *_DATA)


def _decode(raw: str, name: str) -> bytes:
    try:
        data = base64.b64decode(re.sub(r"\s+", "", raw), validate=True)
    except (binascii.Error, ValueError):
        raise PackageError(f"Tệp đính kèm «{name}» không phải dữ liệu base64 hợp lệ.", "bad_base64",
                           attachment=name) from None
    if not data:
        raise PackageError(f"Tệp đính kèm «{name}» rỗng.", "empty_attachment", attachment=name)
    return data


def _unwrap_zip(name: str, data: bytes, recovered: list[str]) -> bytes:
    if not data.startswith(b"PK\x03\x04") or extension(name) in _ZIP_BASED:
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            entries = [i for i in zf.infolist() if not i.is_dir()]
            if len(entries) != 1 or entries[0].file_size > MAX_PACKAGE_BYTES:
                return data
            with zf.open(entries[0]) as fh:
                inner = fh.read(MAX_PACKAGE_BYTES + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
        return data
    if len(inner) > MAX_PACKAGE_BYTES or not inner:
        return data
    recovered.append(f"giải nén tệp «{name}» (cổng gửi đã nén zip nhưng giữ tên gốc)")
    return inner


def _manifest(scope: etree._Element) -> dict[str, etree._Element]:
    refs: dict[str, etree._Element] = {}
    for m in scope.iter():
        if _local(m) not in ("edXMLManifest", "Manifest"):
            continue
        for ref in m:
            if _local(ref) != "Reference":
                continue
            cid = norm_cid(_text(ref, "ContentId") or ref.get(f"{{{XLINK}}}href") or ref.get("href") or "")
            if cid:
                refs[cid.lower()] = ref
    return refs


def _encoded(root: etree._Element) -> list[etree._Element]:
    """Elements that hold an attachment's data (Attachment with a data child or direct base64)."""
    out = []
    for el in root.iter():
        name = _local(el)
        if name == "Attachment" and (_data_child(el) is not None or (el.text or "").strip()):
            out.append(el)
        elif name == "AttachmentEncoded" and _data_child(el) is not None:
            out.append(el)
    return out


def read_attachments(root: etree._Element, recovered: list[str]) -> list[Attachment]:
    manifest = _manifest(root)
    encoded = _encoded(root)
    if len(encoded) > MAX_ATTACHMENTS or len(manifest) > MAX_ATTACHMENTS:
        raise PackageError(f"Gói tin có quá nhiều tệp đính kèm (tối đa {MAX_ATTACHMENTS}).", "too_many_attachments")
    out: list[Attachment] = []
    seen: set[str] = set()
    for el in encoded:
        cid = norm_cid(_text(el, "ContentId") or el.get("ContentId") or "")
        if not cid:  # no id on the data: pair it with the next manifest entry, in order
            cid = next((c for c in manifest if c not in seen), "")
        ref = manifest.get(cid.lower()) if cid else None
        name = (_text(el, "AttachmentName") or _text(el, "FileName") or _text(el, "Name")
                or _text(ref, "AttachmentName") or _text(ref, "Description") or _text(el, "Description")
                or el.get("name") or "")
        if not name.strip():
            raise PackageError("Tệp đính kèm không có tên (AttachmentName).", "attachment_name")
        clean = safe_filename(name)
        if clean != name.strip():
            recovered.append(f"đổi tên tệp đính kèm «{name[:80]}» thành «{clean}»")
        value = _data_child(el)
        data = _unwrap_zip(clean, _decode(_text(value) if value is not None else (el.text or ""), clean), recovered)
        ctype = (_text(el, "ContentType") or _text(el, "FileType") or _text(ref, "ContentType")
                 or "application/octet-stream")
        out.append(Attachment(name=clean, content_type=ctype, data=data,
                              description=_text(el, "Description") or _text(ref, "Description"), content_id=cid))
        if cid:
            seen.add(cid.lower())
    missing = [c for c in manifest if c not in seen]
    if missing:
        raise PackageError(f"Danh mục tệp (edXMLManifest) nêu tệp không có trong gói: {', '.join(missing[:5])}.",
                           "missing_attachment_data", content_ids=missing[:20])
    return out
