"""Uploaded files waiting to be attached to something.

Blobs are content-addressed, so knowing a sha256 must never be enough to attach (and then
read) a file: an attachment has to come from an upload the same user made. Domain services
call ``claim`` with the upload id the client got back.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from eoffice import audit
from eoffice.org import User
from storage.db import Base, UnitOfWork, utcnow
from storage.errors import Forbidden, Invalid, NotFound

if TYPE_CHECKING:
    from storage.blobs import BlobInfo


class Upload(Base):
    __tablename__ = "uploads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, object]:
        return {"id": self.id, "filename": self.filename, "content_type": self.content_type, "size": self.size,
                "sha256": self.blob_key}


def clean_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    if not name or name in {".", ".."}:
        raise Invalid("Tên tệp không hợp lệ.")
    return name[:255]


async def record_upload(uow: UnitOfWork, actor: User, info: BlobInfo, filename: str) -> Upload:
    upload = Upload(blob_key=info.key, filename=clean_filename(filename), content_type=info.content_type,
                    size=info.size, user_id=actor.id)
    uow.session.add(upload)
    await uow.session.flush()
    await audit.record(uow, actor, "file.upload", "upload", upload.id, filename=upload.filename,
                       size=info.size, sha256=info.key)
    return upload


async def claim(uow: UnitOfWork, actor: User, upload_id: int) -> Upload:
    """The upload, if ``actor`` made it; attaching it is then the caller's business."""
    upload = await uow.session.get(Upload, upload_id)
    if upload is None:
        raise NotFound("Không tìm thấy tệp tải lên.")
    if upload.user_id != actor.id:
        raise Forbidden("Tệp này do người khác tải lên.")
    return upload
