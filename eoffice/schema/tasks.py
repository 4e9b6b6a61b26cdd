"""Submissions to a leader, directions, tasks and their updates and extension requests, with the
pure rule their ``public()`` shows (``deadline_state``). Service: ``eoffice.tasks``.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from eoffice.agency_time import local_date
from storage.db import Base, utcnow

DUE_SOON_DAYS = 2


class TaskRole(enum.StrEnum):
    MAIN = "main"  # chủ trì
    COLLAB = "collab"  # phối hợp


class TaskStatus(enum.StrEnum):
    OPEN = "open"  # chưa xử lý
    IN_PROGRESS = "in_progress"
    RETURNED = "returned"  # trả lại
    DONE = "done"
    WITHDRAWN = "withdrawn"  # thu hồi by the assigner


TASK_STATUS_LABELS = {TaskStatus.OPEN: "Chưa xử lý", TaskStatus.IN_PROGRESS: "Đang xử lý",
                      TaskStatus.RETURNED: "Đã trả lại", TaskStatus.DONE: "Hoàn thành",
                      TaskStatus.WITHDRAWN: "Đã thu hồi"}
CLOSED = (TaskStatus.DONE, TaskStatus.WITHDRAWN)  # nothing more to do on them


class Submission(Base):
    __tablename__ = "document_submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, directed
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column()


class DirectionNote(Base):
    """Ý kiến chỉ đạo."""

    __tablename__ = "document_directions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    informed: Mapped[str] = mapped_column(Text, default="")  # readable list, for the record
    # bút phê: the leader's handwriting on the document's pages (eoffice.ink), or None
    ink: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    on_behalf_of: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # ủy quyền: leader_id acted for them
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_assignee_user_status", "assignee_user_id", "status"),
        Index("ix_tasks_assignee_unit_status", "assignee_unit_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    direction_id: Mapped[int | None] = mapped_column(ForeignKey("document_directions.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    role: Mapped[str] = mapped_column(String(10), default=TaskRole.MAIN)
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assignee_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    assigned_by: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    instruction: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default=TaskStatus.OPEN)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str] = mapped_column(Text, default="")
    result_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self, today: dt.date | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "document_id": self.document_id, "parent_id": self.parent_id, "role": self.role,
            "assignee_user_id": self.assignee_user_id, "assignee_unit_id": self.assignee_unit_id,
            "assigned_by": self.assigned_by, "title": self.title, "instruction": self.instruction,
            "deadline": self.deadline.isoformat() if self.deadline else None, "status": self.status,
            "status_label": TASK_STATUS_LABELS.get(TaskStatus(self.status), ""), "progress": self.progress,
            "result": self.result, "result_document_id": self.result_document_id,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "deadline_state": deadline_state(self, today or local_date(utcnow())),
        }


class TaskUpdate(Base):
    __tablename__ = "task_updates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))  # progress, comment, return, extension, complete, pass_down
    text: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[int | None] = mapped_column(Integer)
    blob_key: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(120))
    size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "task_id": self.task_id, "user_id": self.user_id, "kind": self.kind,
                "text": self.text, "progress": self.progress, "filename": self.filename, "size": self.size,
                "file_url": f"/api/task-updates/{self.id}/file" if self.blob_key else None,
                "created_at": self.created_at.isoformat()}


class ExtensionRequest(Base):
    __tablename__ = "task_extensions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    old_deadline: Mapped[dt.date | None] = mapped_column(Date)
    new_deadline: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, approved, refused
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def deadline_state(task: Task, today: dt.date) -> str:
    """none | ok | due_soon | overdue (open tasks); on_time | late (done tasks)."""
    if task.status == TaskStatus.DONE:
        if task.deadline is None or task.completed_at is None:
            return "on_time"
        return "on_time" if local_date(task.completed_at) <= task.deadline else "late"
    if task.deadline is None:
        return "none"
    if task.deadline < today:
        return "overdue"
    if (task.deadline - today).days <= DUE_SOON_DAYS:
        return "due_soon"
    return "ok"
