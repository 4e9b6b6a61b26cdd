"""XML digital signatures (xmldsig) in edXML packages: verify and describe, never trust blindly.

A package may carry a ``Signature`` (``http://www.w3.org/2000/09/xmldsig#``), usually in
``edXMLHeader``, with the signer's certificate in ``KeyInfo/X509Data``. We check, with signxml, that
the signature matches what it references, using the certificate the package carries. Whether that
certificate belongs to a trusted Vietnamese CA is not decided here (the national CA roots are not in
the system store): the result says so. SHA-1, still used by real packages, is accepted and noted.

Results: ``valid`` (the signature matches the carried certificate), ``invalid`` (it does not: the
package was changed after signing, or the signature is malformed), ``unsigned``.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

DSIG = "http://www.w3.org/2000/09/xmldsig#"
VALID, INVALID, UNSIGNED = "valid", "invalid", "unsigned"
LABELS = {VALID: "Chữ ký số hợp lệ", INVALID: "Chữ ký số KHÔNG hợp lệ", UNSIGNED: "Không có chữ ký số"}


@dataclass
class SignatureCheck:
    result: str = UNSIGNED
    signer: str = ""
    subject: str = ""
    issuer: str = ""
    serial: str = ""
    message: str = ""
    notes: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"result": self.result, "label": LABELS[self.result], "signer": self.signer, "subject": self.subject,
                "issuer": self.issuer, "serial": self.serial, "message": self.message, "notes": self.notes}


def _certificate(sig: etree._Element) -> x509.Certificate | None:
    for el in sig.iter(f"{{{DSIG}}}X509Certificate"):
        raw = "".join((el.text or "").split())
        try:
            return x509.load_der_x509_certificate(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            return None
    return None


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def verify(root: etree._Element) -> SignatureCheck:
    """Check the first xmldsig Signature under ``root`` (the outermost element of the package)."""
    sig = next(root.iter(f"{{{DSIG}}}Signature"), None)
    if sig is None:
        return SignatureCheck()
    check = SignatureCheck(result=INVALID)
    cert = _certificate(sig)
    if cert is None:
        check.message = "Chữ ký số không kèm chứng thư số (KeyInfo/X509Certificate) đọc được."
        return check
    check.signer, check.subject = _cn(cert.subject), cert.subject.rfc4514_string()
    check.issuer, check.serial = cert.issuer.rfc4514_string(), format(cert.serial_number, "X")
    from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier  # heavy (signxml)
    from signxml.exceptions import InvalidInput, InvalidSignature  # heavy (signxml)

    config = SignatureConfiguration(expect_references=True, signature_methods=frozenset(SignatureMethod),
                                    digest_algorithms=frozenset(DigestAlgorithm))
    method = sig.find(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}SignatureMethod")
    if method is not None and "sha1" in (method.get("Algorithm") or "").lower():
        check.notes.append("Thuật toán SHA-1 (yếu) được dùng để ký.")
    try:
        # a copy: signxml removes the enveloped signature while it checks
        XMLVerifier().verify(copy.deepcopy(root), x509_cert=cert, expect_config=config)
    except (InvalidSignature, InvalidInput, ValueError, etree.LxmlError) as exc:
        check.message = f"Chữ ký số không khớp nội dung gói tin: {str(exc)[:200]}"
        return check
    check.result = VALID
    check.notes.append("Chưa kiểm tra chuỗi tin cậy của chứng thư (CA quốc gia).")
    return check
