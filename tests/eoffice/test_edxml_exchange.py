"""Round trip between two agencies: issue, sign and export at one, import at the other with the same
metadata and the same signed bytes; status messages back to the sender."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path

import pytest

from eoffice import edxml, outgoing, signatures
from eoffice.documents import attachments_of
from eoffice.edxml_parse import parse
from eoffice.schema.documents import Document
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import Conflict, NotFound
from tests.eoffice.conftest import Org, make_pdf, upload
from tests.eoffice.test_signatures import PASSPHRASE, make_pki

SUMMARY = "Quyết định thành lập Tổ công tác chuyển đổi số tỉnh Quảng Ninh"


async def issue_document(db: Database, org: Org, blobs: BlobStore, pdf: bytes, confidentiality: str = "thuong"
                         ) -> Document:
    cv, head, clerk = org["chuyenvien"], org["truongphong"], org["vanthu"]
    async with db.uow() as uow:
        up = await upload(uow, cv, blobs, pdf, "quyet-dinh.pdf")
        doc = await outgoing.create_draft(uow, cv, blobs, doc_type="quyet_dinh", summary=SUMMARY, urgency="thuong_khan",
                                          recipients=["Ủy ban nhân dân thị xã Đông Triều"], upload_id=up,
                                          due_date=dt.date(2030, 1, 31), confidentiality=confidentiality)
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await uow.commit()
    async with db.uow() as uow:  # the chain: the unit head, then the agency's leader
        await outgoing.approve(uow, head, doc.id, comment="Trình lãnh đạo", forward_to=org["lanhdao"].id)
        await outgoing.approve(uow, org["lanhdao"], doc.id, comment="Ban hành")
        await uow.commit()
    async with db.uow() as uow:
        issued, _, _ = await outgoing.issue(uow, clerk, doc.id, signer="Trần Văn Hùng")
        await uow.commit()
    return issued


@pytest.fixture
def signing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pki = make_pki(tmp_path)
    monkeypatch.setenv("EOFFICE_SIGNING_P12", str(pki.p12))
    monkeypatch.setenv("EOFFICE_SIGNING_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("EOFFICE_TRUST_ROOTS", str(pki.root_pem))
    return pki.root_pem


async def test_round_trip_signed_export_and_import_elsewhere(db: Database, org: Org, blobs: BlobStore,
                                                             signing: Path) -> None:
    pdf = make_pdf(["Quyết định thành lập Tổ công tác chuyển đổi số", "Điều 1. Thành lập Tổ công tác"])
    issued = await issue_document(db, org, blobs, pdf)
    async with db.uow() as uow:
        package = await edxml.export_document(uow, org["vanthu"], blobs, issued.id)
        await uow.commit()
    async with db.uow() as uow:  # exported again: signed once, same exchange id
        again = await edxml.export_document(uow, org["vanthu"], blobs, issued.id)
        (att,) = await attachments_of(uow, issued)
        await uow.commit()
    pkg = parse(package)
    assert parse(again).document_id == pkg.document_id and parse(again).attachments[0].data == pkg.attachments[0].data
    signed = await blobs.read(att.blob_key)
    assert signed.startswith(pdf) and signed != pdf and pkg.attachments[0].data == signed
    assert signatures.signature_count(signed) == 1

    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["dt.vanthu"], blobs, package, "qd.xml")
        await uow.commit()
    assert result.ok, result.message
    got = result.document
    assert got is not None and got.agency_id == org.units["DT"].id and got.direction == "in"
    for name in ("notation", "date_issued", "summary", "signer", "urgency", "doc_type", "due_date"):
        assert getattr(got, name) == getattr(issued, name), name
    assert got.sender == "Ủy ban nhân dân tỉnh Quảng Ninh" and got.sender_unit_id == org.units["UBND"].id
    async with db.uow() as uow:
        (copy,) = await attachments_of(uow, got)
        assert copy.blob_key == hashlib.sha256(signed).hexdigest() and copy.filename == "quyet-dinh.pdf"
        (report,) = await signatures.verify_document(uow, org["dt.vanthu"], blobs, got.id)
    (sig,) = report["signatures"]
    assert sig["ok"] and sig["trusted"] and "Quảng Ninh" in sig["signer"]

    # status back to the sender: 01 on import; 03 and 04 when directed; 06 when done
    async with db.uow() as uow:
        await edxml.record_status(uow, org["dt.vanthu"], got.id, "03", "04")
        await edxml.record_status(uow, org["dt.vanthu"], got.id, "04", "06")  # recorded once each
        tl = await edxml.timeline(uow, org["dt.vanthu"], got.id)
        await uow.commit()
    assert [e["code"] for e in tl["status_events"]] == ["01", "03", "04", "06"]
    async with db.uow() as uow:
        status_xml = await edxml.status_package(uow, org["dt.vanthu"], tl["status_events"][-1]["id"])
    async with db.uow() as uow:
        back = await edxml.import_package(uow, org["vanthu"], blobs, status_xml, "trang-thai.xml")
        await uow.commit()
    assert back.ok and back.action == "status" and back.document is not None and back.document.id == issued.id
    async with db.uow() as uow:
        mine = await edxml.timeline(uow, org["vanthu"], issued.id)
    assert mine["exchange"]["direction"] == "out"
    assert [(e["direction"], e["code"], e["organ_id"]) for e in mine["status_events"]] == [("in", "06", "DT")]


async def test_export_unsigned_without_configuration(db: Database, org: Org, blobs: BlobStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EOFFICE_SIGNING_P12", raising=False)
    pdf = make_pdf(["Quyết định không ký số"])
    issued = await issue_document(db, org, blobs, pdf)
    async with db.uow() as uow:
        package = await edxml.export_document(uow, org["vanthu"], blobs, issued.id)
    assert parse(package).attachments[0].data == pdf


async def test_only_issued_outgoing_documents_are_exported(db: Database, org: Org, blobs: BlobStore) -> None:
    async with db.uow() as uow:
        draft = await outgoing.create_draft(uow, org["chuyenvien"], blobs, doc_type="cong_van", summary=SUMMARY)
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(NotFound):  # a draft the clerk may not even see
            await edxml.export_document(uow, org["vanthu"], blobs, draft.id)
        with pytest.raises(Conflict, match="đã phát hành"):
            await edxml.export_document(uow, org["vanthu"], blobs, (await _incoming(uow, org, blobs)).id)


async def _incoming(uow, org: Org, blobs: BlobStore) -> Document:  # type: ignore[no-untyped-def]
    from eoffice.documents import register_incoming
    from tests.eoffice.conftest import incoming_fields

    doc, _ = await register_incoming(uow, org["vanthu"], blobs, **incoming_fields(1))
    return doc


async def test_confidential_documents_are_not_exported(db: Database, org: Org, blobs: BlobStore) -> None:
    secret = await issue_document(db, org, blobs, make_pdf(["Văn bản mật"]), confidentiality="mat")
    async with db.uow() as uow:
        with pytest.raises(Conflict, match="Văn bản mật"):
            await edxml.export_document(uow, org["vanthu"], blobs, secret.id)
        with pytest.raises(NotFound):  # another agency's clerk
            await edxml.export_document(uow, org["stttt.vanthu"], blobs, secret.id)


async def test_issue_signs_the_pdf_and_internal_recipients_receive_the_signed_file(
        db: Database, org: Org, blobs: BlobStore, signing: Path) -> None:
    pdf = make_pdf(["Quyết định giao chỉ tiêu chuyển đổi số năm 2027", "Điều 1. Giao chỉ tiêu"])
    cv, head, clerk = org["chuyenvien"], org["truongphong"], org["vanthu"]
    async with db.uow() as uow:
        up = await upload(uow, cv, blobs, pdf, "quyet-dinh.pdf")
        doc = await outgoing.create_draft(uow, cv, blobs, doc_type="quyet_dinh", summary=SUMMARY, urgency="thuong",
                                          recipients=[{"unit_id": org.units["DT"].id}], upload_id=up)
        await outgoing.send_for_approval(uow, cv, doc.id, head.id)
        await uow.commit()
    async with db.uow() as uow:  # the chain: the unit head, then the agency's leader
        await outgoing.approve(uow, head, doc.id, comment="Trình lãnh đạo", forward_to=org["lanhdao"].id)
        await outgoing.approve(uow, org["lanhdao"], doc.id, comment="Ban hành")
        await uow.commit()
    async with db.uow() as uow:
        issued, copies, _ = await outgoing.issue(uow, clerk, doc.id, signer="Trần Văn Hùng", blobs=blobs)
        await uow.commit()
    async with db.uow() as uow:
        (att,) = await attachments_of(uow, issued)
        (copy_att,) = await attachments_of(uow, copies[0])
    signed = await blobs.read(att.blob_key)
    assert signed.startswith(pdf) and signatures.signature_count(signed) == 1  # incremental update
    assert copy_att.blob_key == att.blob_key  # Đông Triều received the signed file, not the draft
    roots = signatures.load_certificates(await asyncio.to_thread(signing.read_bytes))
    (report,) = await signatures.verify_pdf(signed, roots)
    assert report.intact and report.valid
