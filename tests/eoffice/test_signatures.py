"""PDF signatures: a test certificate authority, PAdES signing as incremental updates, verification
that reports signer, time, integrity, changes after signing and trust."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from eoffice import signatures
from eoffice.signatures import SigningConfig, load_certificates, load_signer, sign_pdf, verify_pdf
from tests.eoffice.conftest import make_pdf

PASSPHRASE = "mật-khẩu-chứng-thư"


@dataclass
class PKI:
    root_pem: Path
    p12: Path
    other_p12: Path

    def config(self, other: bool = False) -> SigningConfig:
        return SigningConfig(str(self.other_p12 if other else self.p12), PASSPHRASE)


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey, *,
          ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
         .not_valid_after(now + dt.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_pki(tmp: Path) -> PKI:
    """A test root CA, an agency certificate it issued, and a second agency's certificate."""
    root_key = _key()
    root_name = _name("CA thử nghiệm Ban Cơ yếu", "Ban Cơ yếu Chính phủ (thử nghiệm)")
    root = _cert(root_name, root_key, root_name, root_key, ca=True)
    (tmp / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    agencies = (("agency.p12", "Ủy ban nhân dân tỉnh Quảng Ninh"), ("other.p12", "Sở Thông tin và Truyền thông"))
    for filename, cn in agencies:
        key = _key()
        cert = _cert(_name(cn, cn), key, root_name, root_key, ca=False)
        data = pkcs12.serialize_key_and_certificates(
            b"agency", key, cert, [root], serialization.BestAvailableEncryption(PASSPHRASE.encode()))
        (tmp / filename).write_bytes(data)
    return PKI(tmp / "root.pem", tmp / "agency.p12", tmp / "other.p12")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def roots(pki: PKI) -> list:
    return load_certificates(pki.root_pem.read_bytes())


async def test_sign_and_verify(pki: PKI, roots: list) -> None:
    pdf = make_pdf(["Quyết định thành lập Tổ công tác chuyển đổi số"])
    assert await verify_pdf(pdf, roots) == []
    signed = await sign_pdf(pdf, load_signer(pki.config()), reason="Phát hành", location="Quảng Ninh")
    assert signed.startswith(pdf)  # an incremental update: the original bytes are untouched
    (r,) = await verify_pdf(signed, roots)
    assert r.ok and r.intact and r.valid and r.trusted and not r.modified_after_signing
    assert "Ủy ban nhân dân tỉnh Quảng Ninh" in r.signer and r.signing_time is not None
    assert "chứng thư tin cậy" in r.summary
    # no trust roots configured: still intact, but the certificate is not verified
    (r,) = await verify_pdf(signed, [])
    assert r.ok and not r.trusted and "chưa xác minh được chứng thư" in r.summary


async def test_second_signature_keeps_the_first_valid(pki: PKI, roots: list) -> None:
    once = await sign_pdf(make_pdf(), load_signer(pki.config()))
    twice = await sign_pdf(once, load_signer(pki.config(other=True)))
    first, second = await verify_pdf(twice, roots)
    assert first.field_name == "ChuKy1" and second.field_name == "ChuKy2"
    assert first.ok and first.modified_after_signing and first.changes_allowed and "thêm chữ ký" in first.summary
    assert second.ok and not second.modified_after_signing and "Sở Thông tin" in second.signer


async def test_content_changed_after_signing_is_reported(pki: PKI, roots: list) -> None:
    signed = await sign_pdf(make_pdf(["Nội dung gốc đã ký"]), load_signer(pki.config()))
    # an incremental update that replaces the page content
    w = IncrementalPdfFileWriter(BytesIO(signed))
    page = w.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 300 Td (SO TIEN DA SUA) Tj ET")
    page["/Contents"] = w.add_object(stream)
    w.update_container(page)
    out = BytesIO()
    w.write(out)
    altered = out.getvalue()
    (r,) = await verify_pdf(altered, roots)
    assert r.intact and r.modified_after_signing and not r.changes_allowed and not r.ok
    assert "sửa đổi sau khi ký" in r.summary

    # flipping bytes inside the signed range breaks integrity
    i = signed.index(b"Td") if b"Td" in signed[:2000] else len(signed) // 3
    flipped = bytearray(signed)
    flipped[i] ^= 0x01
    reports = await verify_pdf(bytes(flipped), roots)
    assert reports and not reports[0].ok and not reports[0].intact


def test_signing_config_from_env(monkeypatch: pytest.MonkeyPatch, pki: PKI) -> None:
    monkeypatch.delenv("EOFFICE_SIGNING_P12", raising=False)
    assert SigningConfig.from_env() is None
    monkeypatch.setenv("EOFFICE_SIGNING_P12", str(pki.p12))
    monkeypatch.setenv("EOFFICE_SIGNING_PASSPHRASE", PASSPHRASE)
    assert SigningConfig.from_env() == pki.config()
    monkeypatch.setenv("EOFFICE_TRUST_ROOTS", str(pki.root_pem))
    assert len(signatures.trust_roots_from_env()) == 1
    monkeypatch.setenv("EOFFICE_SIGNING_PASSPHRASE", "sai")
    with pytest.raises(Exception):  # noqa: B017  (pyHanko/cryptography raise different errors by version)
        load_signer(SigningConfig.from_env())  # type: ignore[arg-type]
