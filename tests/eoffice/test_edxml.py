"""edXML import: documents, recall / update / replace, status messages, and a corpus of malformed
packages, each refused with its own message, quarantined, with nothing registered."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from sqlalchemy import func, select

from eoffice import edxml, uploads
from eoffice.documents import attachments_of
from eoffice.edxml_parse import NS, Organ, Package, PackageError, Reference, build, parse
from eoffice.edxml_parse import Attachment as PA
from eoffice.schema.documents import Attachment, Document
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import Forbidden
from tests.eoffice.conftest import Org, make_pdf

SENDER = Organ("000.00.00.H41", "Ủy ban nhân dân thị xã Đông Triều")
PDF = make_pdf(["Công văn về việc triển khai chính quyền điện tử năm 2026"])


def package(**over: object) -> Package:
    fields: dict[str, object] = dict(
        sender=SENDER, recipients=[Organ("UBND", "Ủy ban nhân dân tỉnh Quảng Ninh")], code_number="125",
        code_notation="UBND-VX", place="Đông Triều", date_issued=dt.date(2026, 1, 5), type_name="Công văn",
        subject="Công văn về việc triển khai chính quyền điện tử", signer="Vũ Đức Thắng",
        due_date=dt.date(2026, 2, 5), priority="1", document_id="a1b2c3d4-0000-4000-8000-000000000125",
        attachments=[PA("cong-van-125.pdf", "application/pdf", PDF, "Công văn 125")])
    fields.update(over)
    return Package(**fields)  # type: ignore[arg-type]


def xml(**over: object) -> bytes:
    return build(package(**over))


async def count(db: Database, model: type) -> int:
    async with db.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model)) or 0)


# ---- parsing (no database) ----------------------------------------------------------------------

def test_build_and_parse_round_trip() -> None:
    pkg = parse(xml())
    assert pkg.notation == "125/UBND-VX" and pkg.sender == SENDER and pkg.date_issued == dt.date(2026, 1, 5)
    assert pkg.subject == "Công văn về việc triển khai chính quyền điện tử" and pkg.urgency == "khan"
    assert pkg.attachments[0].data == PDF and pkg.attachments[0].name == "cong-van-125.pdf"
    assert edxml.doc_type_of(pkg) == "cong_van"
    assert edxml.doc_type_of(parse(xml(type_name="", code_notation="QĐ-UBND"))) == "quyet_dinh"


def _strip_ns_declaration(data: bytes) -> bytes:
    return data.replace(f' xmlns:edXML="{NS}"'.encode(), b"")


def test_messy_but_readable_packages_are_accepted() -> None:
    undeclared = _strip_ns_declaration(xml())
    assert b"xmlns:edXML" not in undeclared
    pkg = parse(undeclared)
    assert pkg.notation == "125/UBND-VX" and any("tiền tố" in r for r in pkg.recovered)
    stray = b"\xef\xbb\xbf\r\n\x00garbage from the mail gateway\n" + xml()
    pkg = parse(stray)
    assert pkg.subject.startswith("Công văn") and any("byte lạ" in r for r in pkg.recovered)
    minimal = xml(due_date=None, signer="", recipients=[], place="", priority="0", document_id="")
    assert parse(minimal).due_date is None
    # the spec's spelling and the corrected one are both read
    assert parse(xml(business_type=2).replace(b"Bussiness", b"Business")).business_type == 2


BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;'
        b'&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>'
        b'<edXMLEnvelope><edXMLHeader><MessageHeader><Subject>&lol2;</Subject></MessageHeader></edXMLHeader>'
        b'</edXMLEnvelope>')
XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b'<edXMLEnvelope><edXMLHeader><MessageHeader><Subject>&xxe;</Subject></MessageHeader></edXMLHeader>'
       b'</edXMLEnvelope>')


def _corpus() -> dict[str, tuple[bytes, str]]:
    good = xml()
    bad_b64 = good.replace(base64.b64encode(PDF)[:40], b"!!!not-base64***" + base64.b64encode(PDF)[16:40])
    return {
        "truncated": (good[: len(good) // 2], "cắt cụt"),
        "billion_laughs": (BOMB, "ENTITY"),
        "external_entity": (XXE, "SYSTEM/PUBLIC"),
        "missing_code": (xml(code_number=""), "Thiếu số, ký hiệu văn bản (Code/CodeNumber)"),
        "bad_base64": (bad_b64, "không phải dữ liệu base64"),
        "bad_date": (good.replace(b"2026-01-05", b"35/13/2026"), "Ngày không hợp lệ (PromulgationInfo"),
        "unknown_business_type": (good.replace(b"<edXML:BussinessDocType>0<", b"<edXML:BussinessDocType>7<"),
                                  "Loại nghiệp vụ không hợp lệ (BusinessDocType)"),
        "missing_subject": (xml(subject=""), "Thiếu trích yếu"),
        "not_edxml": (b"<?xml version='1.0'?><html><body>hello</body></html>", "edXMLEnvelope"),
        "two_subjects": (good.replace(b"<edXML:Content>", "<edXML:Subject>Trích yếu khác</edXML:Subject>"
                                      "<edXML:Content>".encode()), "hai phần tử Subject khác nhau"),
    }


CORPUS = _corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_malformed_corpus_each_has_its_own_message(name: str) -> None:
    data, expected = CORPUS[name]
    with pytest.raises(PackageError) as err:
        parse(data)
    assert expected in err.value.message, err.value.message


def test_messages_are_distinct() -> None:
    messages = set()
    for data, _ in CORPUS.values():
        with pytest.raises(PackageError) as err:
            parse(data)
        messages.add(err.value.problem)
    assert len(messages) == len(CORPUS)


# ---- import -------------------------------------------------------------------------------------

async def test_import_registers_an_incoming_document(db: Database, org: Org, blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    async with db.uow() as uow:
        result = await edxml.import_package(uow, clerk, blobs, _strip_ns_declaration(xml()), "cv125.xml")
        await uow.commit()
    assert result.ok and result.action == "registered", result.message
    doc = result.document
    assert doc is not None and doc.number == 1 and doc.notation == "125/UBND-VX"
    assert doc.sender == SENDER.name and doc.urgency == "khan" and doc.due_date == dt.date(2026, 2, 5)
    async with db.uow() as uow:
        (att,) = await attachments_of(uow, doc)
        assert att.filename == "cong-van-125.pdf" and att.is_pdf and att.blob_key == hashlib.sha256(PDF).hexdigest()
        assert await blobs.read(att.blob_key) == PDF
        tl = await edxml.timeline(uow, clerk, doc.id)
    assert tl["exchange"]["remote_document_id"] == "a1b2c3d4-0000-4000-8000-000000000125"
    assert [e["code"] for e in tl["status_events"]] == ["01"]


async def test_stray_bytes_before_the_declaration_are_accepted(db: Database, org: Org, blobs: BlobStore) -> None:
    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, b"\xef\xbb\xbf--boundary\r\n" + xml())
        await uow.commit()
    assert result.ok and result.document is not None and any("byte lạ" in r for r in result.recovered)


async def test_only_clerks_import(db: Database, org: Org, blobs: BlobStore) -> None:
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await edxml.import_package(uow, org["chuyenvien"], blobs, xml())


@pytest.mark.parametrize("name", ["truncated", "billion_laughs", "external_entity", "missing_code", "bad_base64",
                                  "bad_date", "unknown_business_type"])
async def test_malformed_package_is_quarantined_and_nothing_registered(db: Database, org: Org, blobs: BlobStore,
                                                                       name: str) -> None:
    data, expected = CORPUS[name]
    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, data, f"{name}.xml")
        await uow.commit()
    assert not result.ok and expected in result.message and result.quarantine is not None
    for model in (Document, Attachment, uploads.Upload, edxml.EdxmlLink, edxml.EdxmlMessage):
        assert await count(db, model) == 0, model
    async with db.uow() as uow:
        (q,) = (await uow.session.scalars(select(edxml.EdxmlQuarantine))).all()
    assert q.filename == f"{name}.xml" and q.message == result.message and await blobs.read(q.blob_key) == data


async def test_refusal_by_the_service_rolls_back_uploads_too(db: Database, org: Org, blobs: BlobStore) -> None:
    """A corrupt PDF is only found by the registration service, after the uploads were written."""
    broken = xml(attachments=[PA("hong.pdf", "application/pdf", PDF[:300])])
    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, broken, "hong.xml")
        await uow.commit()
    assert not result.ok and "hong.pdf" in result.message
    assert await count(db, uploads.Upload) == 0 and await count(db, Document) == 0
    assert await count(db, edxml.EdxmlQuarantine) == 1


async def _import(db: Database, org: Org, blobs: BlobStore, data: bytes) -> edxml.ImportResult:
    async with db.uow() as uow:
        result = await edxml.import_package(uow, org["vanthu"], blobs, data)
        await uow.commit()
    return result


async def test_recall_update_and_replace(db: Database, org: Org, blobs: BlobStore) -> None:
    first = await _import(db, org, blobs, xml())
    assert first.ok and first.document is not None

    # update (2): new subject and due date on the same document
    upd = await _import(db, org, blobs, xml(business_type=2, subject="Công văn về việc triển khai chính quyền số",
                                            due_date=dt.date(2026, 3, 1), attachments=[]))
    assert upd.ok and upd.action == "updated" and upd.document is not None and upd.document.id == first.document.id
    async with db.uow() as uow:
        doc = await uow.session.get(Document, first.document.id)
        assert doc is not None and doc.summary.endswith("chính quyền số") and doc.due_date == dt.date(2026, 3, 1)
        assert doc.urgency == "khan"
    # an update without the optional fields keeps them
    bare = xml(business_type=2, subject="Công văn về việc triển khai chính quyền số (cập nhật)", due_date=None,
               attachments=[]).replace(b"<edXML:Priority>1</edXML:Priority>", b"")
    assert (await _import(db, org, blobs, bare)).ok
    async with db.uow() as uow:
        doc = await uow.session.get(Document, first.document.id)
        assert doc is not None and doc.due_date == dt.date(2026, 3, 1) and doc.urgency == "khan"
        assert doc.summary.endswith("(cập nhật)")

    # replace (3): a new document, the old one superseded and linked both ways
    new_pdf = make_pdf(["Công văn thay thế công văn 125"])
    rep = await _import(db, org, blobs, xml(
        business_type=3, code_number="130", document_id="a1b2c3d4-0000-4000-8000-000000000130",
        subject="Công văn thay thế về việc triển khai chính quyền điện tử",
        refers_to=Reference(SENDER.organ_id, "125/UBND-VX", dt.date(2026, 1, 5),
                            "a1b2c3d4-0000-4000-8000-000000000125"),
        attachments=[PA("cong-van-130.pdf", "application/pdf", new_pdf)]))
    assert rep.ok and rep.action == "replaced", rep.message
    assert rep.replaced is not None and rep.replaced.id == first.document.id and rep.document is not None
    async with db.uow() as uow:
        old = await edxml.timeline(uow, org["vanthu"], first.document.id)
        new = await edxml.timeline(uow, org["vanthu"], rep.document.id)
    assert old["exchange"]["state"] == "superseded" and old["exchange"]["related_document_id"] == rep.document.id
    assert new["exchange"]["state"] == "active" and new["exchange"]["related_document_id"] == first.document.id

    # updating a superseded document is refused and quarantined
    again = await _import(db, org, blobs, xml(business_type=2, attachments=[]))
    assert not again.ok and "thay thế" in again.message

    # recall (1) of the replacement
    rec = await _import(db, org, blobs, xml(business_type=1, code_number="130",
                                            document_id="a1b2c3d4-0000-4000-8000-000000000130",
                                            business_reason="Ban hành nhầm", attachments=[]))
    assert rec.ok and rec.action == "recalled" and rec.document is not None and rec.document.id == rep.document.id
    async with db.uow() as uow:
        tl = await edxml.timeline(uow, org["vanthu"], rep.document.id)
    assert tl["exchange"]["state"] == "recalled"
    assert [(e["direction"], e["code"]) for e in tl["status_events"]] == [("out", "01"), ("in", "13"), ("out", "15")]

    # a recall of something we never received
    unknown = await _import(db, org, blobs, xml(business_type=1, code_number="999", document_id="x", attachments=[]))
    assert not unknown.ok and unknown.problem == "unknown_target" and "thu hồi" in unknown.message
    assert await count(db, Document) == 2


async def test_duplicate_package_is_refused(db: Database, org: Org, blobs: BlobStore) -> None:
    assert (await _import(db, org, blobs, xml())).ok
    dup = await _import(db, org, blobs, xml())
    assert not dup.ok and "có thể đã được vào sổ" in dup.message and await count(db, Document) == 1


async def test_direction_and_completion_produce_status_events(db: Database, org: Org, blobs: BlobStore) -> None:
    from eoffice import tasks

    imported = await _import(db, org, blobs, xml(due_date=dt.date(2030, 1, 31)))
    assert imported.document is not None
    doc_id = imported.document.id
    async with db.uow() as uow:
        await tasks.submit(uow, org["vanthu"], doc_id, org["lanhdao"].id)
        await uow.commit()
    async with db.uow() as uow:
        _, (task,) = await tasks.direct(uow, org["lanhdao"], doc_id, text="Giao chuyên viên xử lý",
                                        main={"user_id": org["chuyenvien"].id})
        await uow.commit()
    async with db.uow() as uow:
        await tasks.complete(uow, org["chuyenvien"], task.id, result="Đã triển khai")
        await uow.commit()
    async with db.uow() as uow:
        tl = await edxml.timeline(uow, org["vanthu"], doc_id)
        package = await edxml.status_package(uow, org["vanthu"], tl["status_events"][-1]["id"])
    assert [e["code"] for e in tl["status_events"]] == ["01", "03", "04", "06"]
    status = parse(package).status
    assert status is not None and status.code == "06" and status.refers_to.notation == "125/UBND-VX"
    assert status.refers_to.document_id == "a1b2c3d4-0000-4000-8000-000000000125"
