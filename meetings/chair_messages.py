"""A message from the chair or secretary to every tablet in the room (issue 22): "Đề nghị các đại biểu tắt
micrô", "Nghỉ giải lao 15 phút". It raises a banner over the reader on every layout. Not stored beyond the
room's event log (a tablet that reconnects is replayed what it missed) and the audit log (who said what)."""

from __future__ import annotations

import re
from typing import Any

from eoffice import audit
from eoffice.org import User
from meetings import rules, topics
from meetings.meetings import get_context
from storage.db import UnitOfWork, utcnow
from storage.errors import Forbidden, Invalid

MAX_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: Any) -> str:
    """The message as shown: control characters out, surrounding spaces trimmed, 1..MAX_CHARS characters."""
    value = _CONTROL.sub("", str(text or "")).strip()
    if not value:
        raise Invalid("Nhập nội dung tin nhắn.", field="text")
    if len(value) > MAX_CHARS:
        raise Invalid(f"Tin nhắn tối đa {MAX_CHARS} ký tự.", field="text")
    return value


async def send(uow: UnitOfWork, actor: User, meeting_id: int, text: Any) -> dict[str, Any]:
    """Send ``text`` to the room of a meeting in progress; only its chair or secretary may."""
    ctx = await get_context(uow, actor, meeting_id)
    if not ctx.access.controller:
        raise Forbidden("Chỉ chủ tọa hoặc thư ký được gửi tin nhắn tới phòng họp.")
    rules.require_live(ctx.meeting.state)
    message = {"text": clean(text), "sender": actor.full_name, "at": utcnow().isoformat()}
    await audit.record(uow, actor, "meeting.message", "meeting", ctx.meeting.id, text=message["text"])
    uow.emit(topics.room(ctx.meeting.id), "chair.message", **message)
    return message
