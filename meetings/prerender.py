"""Warming the page cache before the tablets ask (issue #22).

When the chair opens an agenda item every tablet in the room asks for page 1 of the same document
at the same moment. The page cache (``meetings.documents``) renders it once for all of them, but the
first of them still waits for the worker to receive, open and render the file. A service that makes
a document likely to be read soon (attaching it to the meeting, making its item current) therefore
hands its version ids, after its commit, to the pre-renderer of the database (``Database.consumers``,
registered by ``meetings.documents.Prerenderer`` in the server; none in the CLI): it renders the
first pages in the background, one document at a time, skipping what is cached already. Nothing here
waits: a request never blocks on pre-rendering, and a tablet that asks while a page is being
pre-rendered shares that render (the cache's in-flight futures).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from meetings.schema import Document
from storage.db import UnitOfWork

CONSUMER = "meeting-prerender"  # the pre-renderer's name among its database's consumers


def after_commit(uow: UnitOfWork, version_ids: Sequence[int]) -> None:
    """Pre-render the first pages of these document versions once ``uow`` commits (nothing after a
    rollback, nothing without a pre-renderer)."""
    ids, db = [v for v in version_ids if v], uow.db
    if not ids:
        return

    def wake() -> None:
        consumer = db.consumers.get(CONSUMER)
        if consumer is not None:
            consumer(ids)

    uow.after_commit(wake)


async def item_versions(uow: UnitOfWork, item_id: int) -> list[int]:
    """The current versions of an agenda item's documents, in their order (none asked for without a pre-renderer)."""
    if CONSUMER not in uow.db.consumers:
        return []
    rows = await uow.session.scalars(select(Document.current_version_id).where(Document.item_id == item_id)
                                     .order_by(Document.position))
    return [v for v in rows.all() if v is not None]
