"""Minutes as a record (văn bản) under Decree 30/2020/NĐ-CP: the issuing agency's header, the
place-and-date line, a number in the agency's register, and the chair's and secretary's signatures.

- Number: when the chair approves, the minutes take the next number of the ``BB`` (Biên bản) series
  of the issuing agency's outgoing register for the meeting's year (``eoffice.registers``, the same
  gap-free allocation as outgoing documents). Reopened and approved again, they keep it.
- Signatures: after approval the chair and the secretary each add a PAdES signature to the approved
  PDF (``eoffice.signatures.sign_pdf``, an incremental update, so the first stays valid). Each signs
  with their own certificate: ``EOFFICE_PERSONAL_P12_DIR`` holds ``<username>.p12`` per person (kept
  by the administrator like the agency's ``EOFFICE_SIGNING_P12``), and the signer types its
  passphrase (the PIN) each time: a click alone signs nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pymupdf
from sqlalchemy import select

from eoffice import audit, doctypes, ingest, registers, signatures
from eoffice.agency_time import AGENCY_TZ
from eoffice.org import Unit, UnitKind, User
from eoffice.textfold import format_notation
from meetings import meeting_dossier, render, topics
from meetings.meetings import get_context, view_context
from meetings.schema import Meeting, MinutesSignature
from storage.blobs import BlobStore
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

SERIES = "bien_ban"  # eoffice.doctypes: Biên bản, abbreviation BB
ABBR = doctypes.doc_type(SERIES).abbr
ROLES = {"chair": "Chủ trì", "secretary": "Thư ký"}

# ---------------------------------------------------------------- header (pure)

_ADMIN_PREFIX = re.compile(r"^(?:Ủy ban nhân dân|Uỷ ban nhân dân|UBND|Hội đồng nhân dân|HĐND)\s+"
                           r"(?:tỉnh|thành phố|huyện|quận|thị xã|xã|phường|thị trấn)\s+", re.IGNORECASE)
_PLACES = {UnitKind.PROVINCE, UnitKind.DISTRICT, UnitKind.COMMUNE}


def place_name(unit_name: str) -> str:
    """«Ủy ban nhân dân tỉnh Quảng Ninh» -> «Quảng Ninh» (the địa danh of the place-and-date line)."""
    return _ADMIN_PREFIX.sub("", unit_name.strip())


def date_line(place: str, day: dt.date) -> str:
    """Decree 30: days under 10 and months 1 and 2 take a leading zero."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"{place or '......'}, ngày {day.day:02d} tháng {month} năm {day.year}"


def number_line(notation: str | None, agency_code: str) -> str:
    return f"Số: {notation}" if notation else f"Số:      /{ABBR}-{agency_code or '...'}"


@dataclass(frozen=True)
class Issuer:
    agency: Unit | None
    parent: Unit | None  # cơ quan chủ quản
    place: str


async def _chain(uow: UnitOfWork, unit_id: int | None) -> list[Unit]:
    out: list[Unit] = []
    while unit_id is not None and len(out) < 20:
        unit = await uow.session.get(Unit, unit_id)
        if unit is None or unit in out:
            break
        out.append(unit)
        unit_id = unit.parent_id
    return out


async def issuer_of(uow: UnitOfWork, m: Meeting) -> Issuer:
    """The issuing agency is the chair's (or else the secretary's, the organiser's); its parent agency;
    the place: ``EOFFICE_LOCALITY`` if set, else the nearest province, district or commune up the tree."""
    lead = None
    for uid in (m.chair_id, m.secretary_id, m.created_by):
        if uid and (lead := await uow.session.get(User, uid)) is not None:
            break
    chain = await _chain(uow, lead.unit_id if lead else None)
    agencies = [u for u in chain if u.is_agency]
    agency = agencies[0] if agencies else None
    parent = agencies[1] if len(agencies) > 1 else None
    place = os.environ.get("EOFFICE_LOCALITY", "").strip()
    if not place:
        above = chain[chain.index(agency):] if agency else chain
        place = next((place_name(u.name) for u in above if u.kind in _PLACES), "")
    return Issuer(agency, parent, place)


# ---------------------------------------------------------------- number


async def number_minutes(uow: UnitOfWork, m: Meeting) -> None:
    """Give approved minutes their number (once: a reopened and re-approved record keeps it). Called by
    ``minutes.approve`` inside its transaction, before the audit entry (the register's lock order)."""
    if m.minutes_number is not None:
        return
    issuer = await issuer_of(uow, m)
    if issuer.agency is None:
        raise Conflict("Chủ trì không thuộc cơ quan nào có sổ đăng ký văn bản: không cấp số biên bản được.")
    year = registers.register_year(m.started_at or m.starts_at)
    reg_id, number = await registers.allocate_number(uow, issuer.agency.id, registers.Direction.OUT, SERIES, year)
    m.minutes_register_id, m.minutes_number = reg_id, number
    m.minutes_notation = format_notation(number, ABBR, issuer.agency.code)


# ---------------------------------------------------------------- signatures


def has_personal_p12(username: str) -> bool:
    try:
        personal_p12(username)
    except Conflict:
        return False
    return True


def personal_p12(username: str) -> Path:
    folder = os.environ.get("EOFFICE_PERSONAL_P12_DIR", "").strip()
    if not folder:
        raise Conflict("Máy chủ chưa cấu hình chứng thư số cá nhân (EOFFICE_PERSONAL_P12_DIR).")
    path = Path(folder) / f"{username}.p12"
    if not re.fullmatch(r"[\w.@-]+", username) or not path.is_file():
        raise Conflict("Bạn chưa có chứng thư số cá nhân trên máy chủ; liên hệ quản trị hệ thống.")
    return path


HEADINGS = {"chair": "CHỦ TRÌ", "secretary": "THƯ KÝ"}  # the signature block of meetings.minutes


def signature_box(data: bytes, heading: str) -> tuple[int, tuple[int, int, int, int]] | None:
    """Where a signature goes: under its heading in the signature block, the last match in the document
    («chủ trì» also appears in the list of participants). PDF coordinates, origin bottom left."""
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        for index in range(doc.page_count - 1, -1, -1):
            page = doc[index]
            hits = sorted(page.search_for(heading), key=lambda r: r.y1)
            if hits:
                r, height = hits[-1], page.rect.height
                mid, top = (r.x0 + r.x1) / 2, r.y1 + 4
                return index, (int(mid - 90), int(height - top - 56), int(mid + 90), int(height - top))
        return None
    finally:
        doc.close()


async def _appearance(data: bytes, heading: str) -> signatures.Appearance | None:
    found = await render.run(signature_box, data, heading)
    if found is None:
        return None
    page, box = found
    when = utcnow().astimezone(AGENCY_TZ).strftime("%H:%M %d/%m/%Y")  # the agency's time, not the server's
    return signatures.Appearance(page, box, f"Ký số bởi: %(signer)s\nThời gian: {when}", await _stamp_font())


@functools.cache
def _stamp_font_file() -> str:
    """Noto Sans (pymupdf-fonts) as a file for pyHanko's stamp: written once per process, by content
    hash, where only this process writes. (pyHanko lays out Liberation Serif with wrong spacing.)"""
    data = pymupdf.Font("notos").buffer
    folder = Path(tempfile.gettempdir()) / f"eoffice-fonts-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"notosans-{hashlib.sha256(data).hexdigest()[:16]}.ttf"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


async def _stamp_font() -> str:
    return await anyio.to_thread.run_sync(_stamp_font_file)


async def sign_personal(actor: User, passphrase: str, data: bytes, *, heading: str, reason: str,
                        location: str) -> tuple[bytes, str]:
    """PAdES-sign ``data`` with the actor's own certificate (``<username>.p12`` in EOFFICE_PERSONAL_P12_DIR,
    unlocked by the passphrase typed now), the visible stamp under ``heading``. Returns the signed PDF and
    the certificate's subject (the minutes and the consultations' result report both sign this way)."""
    config = signatures.SigningConfig(str(personal_p12(actor.username)), passphrase)
    try:
        signer = signatures.load_signer(config)
    except (ValueError, OSError, Invalid):
        raise Invalid("Sai mật khẩu chứng thư số hoặc tệp chứng thư hỏng.", field="passphrase") from None
    signed = await signatures.sign_pdf(data, signer, reason=reason, location=location,
                                       appearance=await _appearance(data, heading))
    return signed, signatures._subject(signer.signing_cert)[:500]


def _role(m: Meeting, actor: User) -> str:
    if actor.id == m.chair_id:
        return "chair"
    if actor.id == m.secretary_id:
        return "secretary"
    raise Forbidden("Chỉ chủ trì và thư ký ký biên bản.")


async def _current(uow: UnitOfWork, m: Meeting) -> list[MinutesSignature]:
    if not m.minutes_blob_key:
        return []
    return list((await uow.session.scalars(select(MinutesSignature).where(
        MinutesSignature.meeting_id == m.id, MinutesSignature.source_key == m.minutes_blob_key)
        .order_by(MinutesSignature.id))).all())


async def sign(uow: UnitOfWork, actor: User, blobs: BlobStore, meeting_id: int, *, passphrase: str) -> MinutesSignature:
    """The chair or the secretary signs the approved minutes with their own certificate."""
    ctx = await get_context(uow, actor, meeting_id, lock=True)
    m = ctx.meeting
    role = _role(m, actor)
    if m.minutes_state != "approved" or not m.minutes_blob_key:
        raise Conflict("Chỉ ký biên bản đã được chủ trì phê duyệt.")
    done = await _current(uow, m)
    if any(s.role == role for s in done):
        raise Conflict("Bạn đã ký biên bản này.")
    source = done[-1].blob_key if done else m.minutes_blob_key
    data = await blobs.read(source, limit=ingest.MAX_PDF_BYTES)
    signed, subject = await sign_personal(actor, passphrase, data, heading=HEADINGS[role],
                                          reason=f"{ROLES[role]} ký biên bản {m.minutes_notation or ''}",
                                          location=(await issuer_of(uow, m)).place)
    info = await blobs.put_bytes(signed, content_type="application/pdf")
    row = MinutesSignature(meeting_id=m.id, source_key=m.minutes_blob_key, role=role, user_id=actor.id,
                           blob_key=info.key, size=info.size, signed_at=utcnow(), certificate=subject)
    uow.session.add(row)
    await uow.session.flush()
    await audit.record(uow, actor, "meeting.minutes.sign", "meeting", m.id, role=role, before=source,
                       after=info.key, certificate=row.certificate)
    if meeting_dossier.required_roles(m) <= {s.role for s in done} | {role}:
        # the record is complete: it lands in the meeting's work dossier
        await meeting_dossier.file_signed_minutes(uow, actor, m, blob_key=info.key, size=info.size)
    uow.emit(topics.room(m.id), "minutes.signed", role=role)
    return row


def _public(s: MinutesSignature, names: dict[int, str]) -> dict[str, Any]:
    return {"id": s.id, "role": s.role, "role_label": ROLES[s.role], "user_id": s.user_id,
            "name": names.get(s.user_id, ""), "certificate": s.certificate, "size": s.size,
            "signed_at": s.signed_at.isoformat()}


async def record_view(uow: UnitOfWork, actor: User, meeting_id: int) -> dict[str, Any]:
    """Number and signatures of the current approved minutes, and the signed file if there is one."""
    ctx = await view_context(uow, actor, meeting_id)
    m = ctx.meeting
    done = await _current(uow, m) if m.minutes_state == "approved" else []
    names = {u.id: u.full_name for u in (await uow.session.scalars(
        select(User).where(User.id.in_([s.user_id for s in done] or [0])))).all()}
    role = "chair" if actor.id == m.chair_id else "secretary" if actor.id == m.secretary_id else None
    return {"notation": m.minutes_notation, "number": m.minutes_number, "state": m.minutes_state,
            "signatures": [_public(s, names) for s in done],
            "signed_file": f"/api/meetings/{m.id}/minutes/signed.pdf" if done else None,
            "can_sign": bool(role and m.minutes_state == "approved" and role not in {s.role for s in done}),
            "has_certificate": has_personal_p12(actor.username) if role else False,
            "dossier": await meeting_dossier.view(uow, actor, m)}


async def signed_pdf(uow: UnitOfWork, actor: User, blobs: BlobStore, meeting_id: int) -> tuple[Meeting, bytes]:
    """The signed minutes (the last signature's file). The approved PDF is the chair's copy, with every
    confidential item: only those who see everything (chair, secretary, organiser) download it."""
    ctx = await view_context(uow, actor, meeting_id)
    m = ctx.meeting
    if not ctx.access.sees_everything:
        raise Forbidden("Chỉ chủ trì, thư ký và người tổ chức tải bản biên bản đã ký số.")
    if m.minutes_state != "approved":
        raise Conflict("Biên bản chưa được phê duyệt.")
    done = await _current(uow, m)
    if not done:
        raise NotFound("Biên bản chưa được ký số.")
    return m, await blobs.read(done[-1].blob_key, limit=ingest.MAX_PDF_BYTES)

