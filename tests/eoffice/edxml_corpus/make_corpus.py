# ruff: noqa: E501  (the packages are long XML lines, kept as vendors write them)
"""Writes the corpus packages (run once; the output is committed). Shapes rebuilt by hand from
public vendor code and fixtures (see README.md); no third-party file is copied."""

from __future__ import annotations

import base64
import datetime as dt
import io
import zipfile
from pathlib import Path

import pymupdf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

HERE = Path(__file__).parent
NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"


def pdf(text: str) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), text)
    return doc.tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def zipped(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("3f1c2a9e-7b41-4d0e-9a55-1c0f9e2d4b11" + name[name.rfind("."):], data)
    return buf.getvalue()


def docx_like() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document>Báo cáo</w:document>")
    return buf.getvalue()


PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
DOC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504  # OLE2 header: a legacy .doc as received

HEADER = """<edXML:MessageHeader>
  <edXML:From><edXML:OrganId>000.00.00.H41</edXML:OrganId><edXML:OrganizationInCharge>Văn phòng UBND tỉnh Quảng Ninh</edXML:OrganizationInCharge><edXML:OrganName>Ủy ban nhân dân tỉnh Quảng Ninh</edXML:OrganName><edXML:OrganAdd>Phường Hồng Hà, TP Hạ Long</edXML:OrganAdd><edXML:Email>vpubnd@quangninh.gov.vn</edXML:Email></edXML:From>
  <edXML:To><edXML:OrganId>000.00.12.H41</edXML:OrganId><edXML:OrganName>Ủy ban nhân dân thị xã Đông Triều</edXML:OrganName></edXML:To>
  <edXML:To><edXML:OrganId>000.00.13.H41</edXML:OrganId><edXML:OrganName>Ủy ban nhân dân thành phố Uông Bí</edXML:OrganName></edXML:To>
  <edXML:Code><edXML:CodeNumber>{number}</edXML:CodeNumber><edXML:CodeNotation>{notation}</edXML:CodeNotation></edXML:Code>
  <edXML:PromulgationInfo><edXML:Place>Quảng Ninh</edXML:Place><edXML:PromulgationDate>2026/12/01</edXML:PromulgationDate></edXML:PromulgationInfo>
  <edXML:DocumentType><edXML:Type>1</edXML:Type><edXML:TypeDetail>0</edXML:TypeDetail><edXML:TypeName>Công văn</edXML:TypeName></edXML:DocumentType>
  <edXML:Subject>{subject}</edXML:Subject>
  <edXML:Content>Triển khai chính quyền điện tử năm 2027</edXML:Content>
  <edXML:SignerInfo><edXML:Competence>KT. CHỦ TỊCH</edXML:Competence><edXML:Position>PHÓ CHỦ TỊCH</edXML:Position><edXML:FullName>Nguyễn Văn Thành</edXML:FullName></edXML:SignerInfo>
  <edXML:DueDate>2026/12/20</edXML:DueDate>
  <edXML:ToPlaces><edXML:Place>Như trên</edXML:Place><edXML:Place>Lưu: VT, TH</edXML:Place></edXML:ToPlaces>
  <edXML:OtherInfo><edXML:Priority>1</edXML:Priority><edXML:SphereOfPromulgation>Liên thông văn bản</edXML:SphereOfPromulgation><edXML:TyperNotation>TVC</edXML:TyperNotation><edXML:PromulgationAmount>1</edXML:PromulgationAmount><edXML:PageAmount>1</edXML:PageAmount><edXML:Appendixes><edXML:Appendix/></edXML:Appendixes></edXML:OtherInfo>
  <edXML:SteeringType>0</edXML:SteeringType>
  <edXML:DocumentId>000.00.00.H41,2026/12/01,{number}/{notation}</edXML:DocumentId>
</edXML:MessageHeader>
<edXML:TraceHeaderList id="9c1d2e3f" version="1.0" mustUnderstand="1" actor="http://schemas.xmlsoap.org/soap/actor/next">
  <edXML:TraceHeader><edXML:OrganId>000.00.00.H41</edXML:OrganId><edXML:Timestamp>2026/12/01 09:30:00</edXML:Timestamp></edXML:TraceHeader>
  <edXML:Bussiness><edXML:BussinessDocType>0</edXML:BussinessDocType><edXML:BussinessDocReason>Văn bản điện tử mới</edXML:BussinessDocReason><edXML:StaffInfo><edXML:Department>Văn thư</edXML:Department><edXML:Staff>Trần Thị Hoa</edXML:Staff></edXML:StaffInfo><edXML:Paper>0</edXML:Paper></edXML:Bussiness>
</edXML:TraceHeaderList>"""


def wrapped(number: str, notation: str, subject: str, files: list[tuple[str, str, str, bytes]], *,
            href: bool = True) -> str:
    refs, encoded = [], []
    for cid, name, ctype, data in files:
        link = (f' xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:{cid}" xlink:role="XLinkRole"'
                ' xlink:type="simple"') if href else ""
        refs.append(f"<edXML:Reference{link}><edXML:Description>Tệp đính kèm</edXML:Description>"
                    f"<edXML:AttachmentName>{name}</edXML:AttachmentName><edXML:ContentType>{ctype}</edXML:ContentType>"
                    f"<edXML:ContentId>cid:{cid}</edXML:ContentId></edXML:Reference>")
        encoded.append(f"<Attachment><ContentType>{ctype}</ContentType><ContentId>{cid}</ContentId>"
                       f"<Description>Tệp đính kèm</Description><ContentTransferEncoded>{b64(data)}"
                       f"</ContentTransferEncoded><AttachmentName>{name}</AttachmentName></Attachment>")
    head = HEADER.format(number=number, notation=notation, subject=subject)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<edXML xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="{NS}">\n<edXML:edXMLEnvelope xmlns:edXML="{NS}">\n'
            f"<edXML:edXMLHeader>\n{head}\n<edXML:DigitalSignature/>\n</edXML:edXMLHeader>\n<edXML:edXMLBody>"
            f'<edXML:edXMLManifest version="1.0">{"".join(refs)}</edXML:edXMLManifest></edXML:edXMLBody>\n'
            f"</edXML:edXMLEnvelope>\n<AttachmentEncoded>{''.join(encoded)}</AttachmentEncoded>\n</edXML>\n")


def signed(xml: str) -> bytes:
    from signxml import XMLSigner, methods

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ủy ban nhân dân tỉnh Quảng Ninh"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Nguyễn Văn Thành")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x5A17).not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    root = etree.fromstring(xml.encode())
    out = XMLSigner(method=methods.enveloped).sign(
        root, key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()),
        cert=cert.public_bytes(serialization.Encoding.PEM))
    return etree.tostring(out, xml_declaration=True, encoding="UTF-8")


def main() -> None:
    files = [("209", "bao-cao-chinh-quyen-dien-tu.docx",
              "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx_like()),
             ("210", "phu-luc-so-lieu.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              docx_like()),
             ("211", "ghi-chu.txt", "text/plain", "Ghi chú: gửi kèm bản giấy.\n".encode()),
             ("212", "ban-scan-trang-1.png", "image/png", PNG),
             ("213", "cong-van-cu.doc", "application/msword", DOC),
             ("214", "ho-so-kem-theo.zip", "application/zip", zipped("a.txt", b"tai lieu"))]
    (HERE / "wrapped_multi_office.edxml").write_text(
        wrapped("7816", "VPCP-TTĐT", "Về việc triển khai chính quyền điện tử năm 2027", files), encoding="utf-8")
    (HERE / "wrapped_gateway_zipped_pdf.edxml").write_text(wrapped(
        "412", "UBND-VX", "Về việc tổ chức Tết Nguyên đán 2027",
        [("6b0e1f7a-24c9-4c53-9d4b-8f3f2a6c0d15", "cong-van-412.pdf", "application/pdf",
          zipped("cong-van-412.pdf", pdf("Cong van 412/UBND-VX")))], href=False), encoding="utf-8")
    (HERE / "wrapped_signed.edxml").write_bytes(signed(wrapped(
        "88", "QĐ-UBND", "Quyết định phê duyệt kế hoạch chuyển đổi số",
        [("301", "quyet-dinh-88.pdf", "application/pdf", pdf("Quyet dinh 88/QD-UBND"))])))
    bare = wrapped("95", "UBND-NC", "Về việc rà soát thủ tục hành chính",
                   [("cid-95", "cong-van-95.pdf", "application/pdf", pdf("Cong van 95"))])
    env = bare[bare.index("<edXML:edXMLEnvelope"):bare.index("</edXML:edXMLEnvelope>") + len("</edXML:edXMLEnvelope>")]
    att = (f"<edXML:Attachment><edXML:ContentId>cid-95</edXML:ContentId><edXML:ContentType>application/pdf"
           f"</edXML:ContentType><edXML:AttachmentName>cong-van-95.pdf</edXML:AttachmentName><edXML:Value>"
           f"{b64(pdf('Cong van 95'))}</edXML:Value></edXML:Attachment>")
    env = env[:env.index("<edXML:edXMLManifest")] + att + env[env.index("</edXML:edXMLBody>"):]
    (HERE / "bare_envelope.edxml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + env, encoding="utf-8")
    (HERE / "status_unknown_document.edxml").write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<edXML xmlns="{NS}"><edXML:edXMLEnvelope xmlns:edXML="{NS}"><edXML:edXMLHeader><edXML:Status>
<edXML:ResponseFor><edXML:OrganId>000.00.00.G22</edXML:OrganId><edXML:Code>7816/VPCP-TTĐT</edXML:Code>
<edXML:PromulgationDate>2014/02/30</edXML:PromulgationDate><edXML:DocumentId>000.00.00.G22,2014/02/30,7816/VPCP-TTĐT</edXML:DocumentId></edXML:ResponseFor>
<edXML:From><edXML:OrganId>000.00.00.H41</edXML:OrganId><edXML:OrganName>Ủy ban nhân dân tỉnh Quảng Ninh</edXML:OrganName></edXML:From>
<edXML:StaffInfo><edXML:Department>Văn thư</edXML:Department><edXML:Staff>Trần Thị Hoa</edXML:Staff><edXML:Mobile>0912345678</edXML:Mobile><edXML:Email>hoatt@quangninh.gov.vn</edXML:Email></edXML:StaffInfo>
<edXML:StatusCode>03</edXML:StatusCode><edXML:Description>Đã vào sổ văn bản đến</edXML:Description>
<edXML:Timestamp>2026/12/07 08:15:00</edXML:Timestamp></edXML:Status></edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>
""", encoding="utf-8")
    (HERE / "edoc_go_vn.edxml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<EdXMLEnvelope xmlns="http://www.go.vn/eDoc"><MessageHeader><From><OrganId>H37.DN.001</OrganId><OrganName>Công ty CP Hữu nghị Xuân Cương</OrganName></From><To><OrganId>H37.DN.002</OrganId><OrganName>Sở Nội vụ tỉnh Lạng Sơn</OrganName></To><Code><CodeNumber>123</CodeNumber><CodeNotation>CV-XC</CodeNotation></Code><PromulgationInfo><Promulgator>Lê Văn Hùng</Promulgator><PromulgationDate>2026/11/28</PromulgationDate></PromulgationInfo><DocumentType>Công văn</DocumentType><Subject>Về việc đăng ký kết nối liên thông văn bản</Subject><SignerInfo><Signer>Lê Văn Hùng</Signer><Position>Giám đốc</Position><Competence>Trực tiếp</Competence></SignerInfo><OtherInfo><PageAmount>1</PageAmount><Appendix/></OtherInfo><DocumentId>ab535a99-cb2a-404f-8fe8-a762bf4010cc</DocumentId><TraceHeaderList><TraceHeader><Time>2026-11-28T02:00:00.000Z</Time><Path><From>H37.DN.001</From><To>H37.DN.002</To></Path></TraceHeader></TraceHeaderList></MessageHeader><Manifest><Attachment><Content>{b64(pdf("Cong van 123/CV-XC"))}</Content><FileName>cong-van-123.pdf</FileName><FileType>application/pdf</FileType></Attachment></Manifest></EdXMLEnvelope>
""", encoding="utf-8")


if __name__ == "__main__":
    main()
