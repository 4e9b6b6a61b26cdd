"""The background workers of one app: created, started and stopped in one place, the lifespan of
``web.app.create_app``.

The workers themselves belong to their domains: ``meetings.polls_live.PollRunner`` (coalesced poll
progress events, countdowns that close polls), ``meetings.polls_live.CastBatcher`` (the group commit
of votes, telling the runner about them) and ``eoffice.ingest.IngestRunner`` (text extraction of
registered documents). Routes reach them with ``workers(app)``; nothing creates a worker on first
use, so there is exactly one of each per app, bound to the app's database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.applications import Starlette

from eoffice.ingest import IngestRunner
from meetings.polls_live import CastBatcher, PollRunner
from storage.blobs import BlobStore
from storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class Workers:
    poll_runner: PollRunner
    cast_batcher: CastBatcher
    ingest_runner: IngestRunner

    @classmethod
    def create(cls, db: Database, blobs: BlobStore) -> Workers:
        runner = PollRunner(db)
        return cls(poll_runner=runner, cast_batcher=CastBatcher(db, runner=runner),
                   ingest_runner=IngestRunner(db, blobs))

    async def start(self) -> None:
        """Close polls whose countdown ran out while no process was running, resume the others'
        countdowns, and re-queue text extraction a previous process left unfinished (a crash, a restart)."""
        self.poll_runner.ensure()
        count = await self.ingest_runner.recover()
        if count:
            log.info("re-queued %d unfinished ingest jobs", count)

    async def stop(self) -> None:
        await self.poll_runner.stop()
        await self.ingest_runner.stop()


def workers(app: Starlette) -> Workers:
    """The app's workers (set by the lifespan before any request or WebSocket is served)."""
    w: Workers = app.state.workers
    return w
