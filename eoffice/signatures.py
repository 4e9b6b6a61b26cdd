"""PDF digital signatures with pyHanko: verify incoming documents, sign outgoing ones.

Configuration (environment, read when used so an admin change needs no code):

- ``EOFFICE_SIGNING_P12``: path of the agency's PKCS#12 file (certificate + private key);
  ``EOFFICE_SIGNING_PASSPHRASE``: its passphrase. Without them outgoing documents are not signed.
- ``EOFFICE_TRUST_ROOTS``: PEM or DER files of the trusted root certificates (the national root CA
  of the Government Cipher Committee, for instance), separated by ``os.pathsep``. Without them a
  signature can still be intact and valid, but its certificate is "chưa xác minh được chứng thư".

Signing is PAdES baseline (ETSI.CAdES.detached) as an incremental update, so each further
signature leaves the earlier ones valid: pyHanko's difference analysis sees that only a
signature was added after them.

Verification reports, per signature: signer subject, signing time (claimed by the signer, no
timestamp authority is used), integrity (the signed bytes hash to the signed digest), whether the
file was changed after signing (a later revision exists: allowed if it only adds signatures or
form data, otherwise the signature is reported as modified), and trust.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import anyio
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from sqlalchemy import select

from eoffice import audit, documents, ingest
from eoffice.org import User
from eoffice.schema.documents import Attachment, Document, Status
from storage.blobs import BlobStore
from storage.db import UnitOfWork
from storage.errors import Conflict, Invalid

FIELD_PREFIX = "ChuKy"


@dataclass(frozen=True)
class SigningConfig:
    p12_path: str
    passphrase: str

    @classmethod
    def from_env(cls) -> SigningConfig | None:
        path = os.environ.get("EOFFICE_SIGNING_P12", "").strip()
        if not path:
            return None
        return cls(path, os.environ.get("EOFFICE_SIGNING_PASSPHRASE", ""))


def trust_roots_from_env() -> list[asn1_x509.Certificate]:
    return list(_trust_roots(os.environ.get("EOFFICE_TRUST_ROOTS", "")))


@functools.lru_cache(maxsize=4)
def _trust_roots(spec: str) -> tuple[asn1_x509.Certificate, ...]:
    """Read once per setting, not on every verification (the files are read on the event loop)."""
    roots: list[asn1_x509.Certificate] = []
    for name in filter(None, (p.strip() for p in spec.split(os.pathsep))):
        roots += load_certificates(Path(name).read_bytes())
    return tuple(roots)


def load_certificates(data: bytes) -> list[asn1_x509.Certificate]:
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


@dataclass
class SignatureReport:
    field_name: str
    signer: str
    signing_time: str | None
    intact: bool
    valid: bool
    trusted: bool
    modified_after_signing: bool  # a later revision exists
    changes_allowed: bool  # ... and it only adds signatures / form data
    coverage: str
    ok: bool
    summary: str  # Vietnamese, for the document page

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _loader() -> Any:
    from pyhanko.sign import signers  # heavy (pyHanko)

    return signers


def load_signer(config: SigningConfig) -> Any:
    signers = _loader()
    signer = signers.SimpleSigner.load_pkcs12(config.p12_path, passphrase=config.passphrase.encode() or None)
    if signer is None:
        raise Invalid("Không đọc được tệp chứng thư số của cơ quan (PKCS#12 sai hoặc sai mật khẩu).")
    return signer


def _reader(data: bytes) -> Any:
    from pyhanko.pdf_utils.reader import PdfFileReader  # heavy (pyHanko)

    try:
        return PdfFileReader(BytesIO(data), strict=False)
    except Exception as exc:  # pyHanko raises several kinds on a broken file
        raise Invalid(f"Không đọc được PDF để kiểm tra chữ ký: {exc}") from None


def signature_count(data: bytes) -> int:
    return len(_reader(data).embedded_signatures)


@dataclass(frozen=True)
class Appearance:
    """A visible signature: a box on a page (PDF points, origin bottom left; page counted from 0, negative from
    the end) showing ``text`` (pyHanko's %(signer)s and %(ts)s are filled in) in a TrueType font with every
    Vietnamese letter."""

    page: int
    box: tuple[int, int, int, int]
    text: str
    font_path: str


def _stamp(appearance: Appearance) -> Any:
    from pyhanko import stamp  # heavy (pyHanko)
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory  # heavy (pyHanko, fontTools)
    from pyhanko.pdf_utils.text import TextBoxStyle  # heavy (pyHanko)

    return stamp.TextStampStyle(stamp_text=appearance.text, border_width=1, border_color=(0.75, 0.1, 0.1),
                                timestamp_format="%H:%M %d/%m/%Y",
                                text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(appearance.font_path),
                                                            font_size=8))


async def sign_pdf(data: bytes, signer: Any, *, reason: str = "", location: str = "",
                   appearance: Appearance | None = None) -> bytes:
    """Add a PAdES signature as an incremental update (earlier signatures stay valid); invisible
    unless an ``appearance`` places it on a page."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # heavy (pyHanko)
    from pyhanko.sign import fields  # heavy (pyHanko)

    signers = _loader()
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    except Exception as exc:
        raise Invalid(f"Không ký được PDF: {exc}") from None
    existing = {s.field_name for s in writer.prev.embedded_signatures} if hasattr(writer, "prev") else set()
    n = len(existing) + 1
    while f"{FIELD_PREFIX}{n}" in existing:
        n += 1
    meta = signers.PdfSignatureMetadata(field_name=f"{FIELD_PREFIX}{n}", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES, reason=reason or None,
                                        location=location or None)
    if appearance is None:
        pdf_signer = signers.PdfSigner(meta, signer=signer)
    else:
        spec = fields.SigFieldSpec(meta.field_name or "", on_page=appearance.page, box=appearance.box)
        pdf_signer = signers.PdfSigner(meta, signer=signer, stamp_style=_stamp(appearance), new_field_spec=spec)
    # hashing, RSA and (for a visible signature) subsetting the stamp's font take 0.3-1.5 s of CPU:
    # in a thread, not on the event loop every request shares
    out = await anyio.to_thread.run_sync(pdf_signer.sign_pdf, writer)
    return bytes(out.getvalue())


def _subject(cert: Any) -> str:
    try:
        return str(cert.subject.human_friendly)
    except Exception:
        return ""


async def verify_pdf(data: bytes, trust_roots: list[asn1_x509.Certificate] | None = None) -> list[SignatureReport]:
    """Every signature of a PDF, checked. An unsigned PDF gives an empty list."""
    from pyhanko.sign.diff_analysis import ModificationLevel, SuspiciousModification  # heavy (pyHanko)
    from pyhanko.sign.validation import async_validate_pdf_signature  # heavy (pyHanko)
    from pyhanko.sign.validation.errors import SignatureValidationError  # heavy (pyHanko)
    from pyhanko.sign.validation.status import SignatureCoverageLevel  # heavy (pyHanko)
    from pyhanko_certvalidator import ValidationContext  # heavy (pyHanko)

    roots = list(trust_roots if trust_roots is not None else trust_roots_from_env())
    reports = []
    for sig in _reader(data).embedded_signatures:
        vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
        try:
            st = await async_validate_pdf_signature(sig, vc)
        except (SignatureValidationError, ValueError, KeyError) as exc:
            reports.append(SignatureReport(sig.field_name, "", None, False, False, False, True, False, "", False,
                                           f"Chữ ký hỏng, không kiểm tra được: {exc}"))
            continue
        cover = st.coverage
        modified = cover != SignatureCoverageLevel.ENTIRE_FILE
        diff = st.diff_result
        suspicious = isinstance(diff, SuspiciousModification) or (
            diff is not None and getattr(diff, "modification_level", None) == ModificationLevel.OTHER)
        allowed = (not modified) or (cover == SignatureCoverageLevel.ENTIRE_REVISION and not suspicious
                                     and bool(st.docmdp_ok))
        when = st.signer_reported_dt
        report = SignatureReport(
            field_name=sig.field_name, signer=_subject(st.signing_cert),
            signing_time=when.astimezone(dt.UTC).isoformat() if when else None, intact=bool(st.intact),
            valid=bool(st.valid), trusted=bool(st.trusted), modified_after_signing=modified,
            changes_allowed=allowed, coverage=cover.name if cover is not None else "", ok=False, summary="")
        report.ok = report.intact and report.valid and allowed
        report.summary = _summary(report, bool(roots))
        reports.append(report)
    return reports


def _summary(r: SignatureReport, have_roots: bool) -> str:
    if not r.intact:
        return "Chữ ký KHÔNG hợp lệ: nội dung đã ký bị thay đổi."
    if not r.valid:
        return "Chữ ký KHÔNG hợp lệ."
    if not r.changes_allowed:
        return "Văn bản đã bị sửa đổi sau khi ký: chữ ký không còn bảo đảm nội dung hiện tại."
    parts = ["Chữ ký hợp lệ, văn bản toàn vẹn"]
    if r.modified_after_signing:
        parts.append("sau khi ký chỉ được thêm chữ ký")
    if r.trusted:
        parts.append("chứng thư tin cậy")
    elif have_roots:
        parts.append("chứng thư không thuộc danh sách tin cậy")
    else:
        parts.append("chưa xác minh được chứng thư")
    return "; ".join(parts) + "."


# ---- services ---------------------------------------------------------------------------------

async def verify_document(uow: UnitOfWork, actor: User, blobs: BlobStore, document_id: int) -> list[dict[str, Any]]:
    """Signatures of every PDF attachment of a document the actor may see."""
    doc = await documents.get_document(uow, actor, document_id)
    out = []
    for att in await documents.attachments_of(uow, doc):
        if not att.is_pdf:
            continue
        data = await blobs.read(att.blob_key, limit=ingest.MAX_PDF_BYTES)
        try:
            reports = [r.public() for r in await verify_pdf(data)]
            error = ""
        except Invalid as exc:
            reports, error = [], exc.message
        out.append({"attachment_id": att.id, "filename": att.filename, "signed": bool(reports),
                    "signatures": reports, "error": error})
    return out


async def sign_issued(uow: UnitOfWork, actor: User, blobs: BlobStore, doc: Document, *,
                      config: SigningConfig | None = None, force: bool = False) -> list[Attachment]:
    """Sign the PDFs of an issued outgoing document with the agency's certificate (once: a PDF
    already carrying a signature made with this certificate is left alone unless ``force``). The
    signed bytes become a new blob; the attachment (and the internal recipients' copies of it)
    point at it. No configuration: nothing to do. Does not commit."""
    config = config or SigningConfig.from_env()
    if config is None:
        return []
    if doc.direction != "out" or doc.status != Status.ISSUED:
        raise Conflict("Chỉ ký số văn bản đi đã phát hành.")
    signer = load_signer(config)
    ours = signer.signing_cert.sha256
    signed = []
    for att in await documents.attachments_of(uow, doc):
        if not att.is_pdf:
            continue
        data = await blobs.read(att.blob_key, limit=ingest.MAX_PDF_BYTES)
        if not force and any(s.signer_cert.sha256 == ours for s in _reader(data).embedded_signatures):
            continue
        new = await sign_pdf(data, signer, reason=f"Phát hành văn bản {doc.notation}", location=doc.sender)
        info = await blobs.put_bytes(new, content_type="application/pdf")
        old_key = att.blob_key
        copies = (await uow.session.scalars(select(Attachment).join(Document, Document.id == Attachment.document_id)
                                            .where(Document.source_document_id == doc.id,
                                                   Attachment.blob_key == old_key))).all()
        for a in [att, *copies]:
            a.blob_key, a.size = info.key, info.size
        await uow.session.flush()
        await audit.record(uow, actor, "document.sign", "document", doc.id, attachment_id=att.id,
                           before=old_key, after=info.key, certificate=_subject(signer.signing_cert))
        uow.emit(f"document:{doc.id}", "document.signed", attachment_id=att.id)
        signed.append(att)
    return signed
