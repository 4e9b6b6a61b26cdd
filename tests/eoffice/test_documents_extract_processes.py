"""Text extraction in two worker processes (issue #4): files are shared between them, each answer
goes to its own request, a dead worker is restarted and what it held is sent again, and the ingest
runner stores every text whatever worker extracted it."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from eoffice import ingest, search
from eoffice.documents import register_incoming
from eoffice.ingest import Extractor, IngestRunner, WorkerGone
from storage.blobs import BlobStore
from storage.db import Database
from tests.eoffice.conftest import Org, incoming_fields, make_pdf, upload


def test_a_server_with_two_cores_extracts_in_two_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    assert ingest.default_processes() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert ingest.default_processes() == 1


async def test_files_are_shared_between_the_workers() -> None:
    ex = Extractor(processes=2)
    try:
        await ex.start()
        assert len(set(ex.pids)) == 2
        titles = [f"Công văn số {i} về chuyển đổi số tỉnh Quảng Ninh" for i in range(8)]
        loads: list[list[int]] = []
        futures = [ex.submit_nowait(make_pdf([t])) for t in titles]
        await asyncio.sleep(0)  # the submissions have chosen their workers
        loads.append([w.load for w in ex._workers])
        results = await asyncio.gather(*futures)
        assert [r.text.strip() for r in results] == titles  # each answer to its own request
        assert loads == [[4, 4]]  # four files in each worker's hands
        assert [w.load for w in ex._workers] == [0, 0]

        first, second = ex.pids
        os.kill(first, signal.SIGSTOP)  # one worker stuck on a file, then crashed
        stuck = [ex.submit_nowait(make_pdf([f"Trang {i}"])) for i in range(2)]  # one to each worker
        await asyncio.sleep(0.2)
        os.kill(first, signal.SIGKILL)
        outcomes = await asyncio.gather(*stuck, return_exceptions=True)  # the dead one's file is sent again
        assert not any(isinstance(o, WorkerGone) for o in outcomes)
        assert [o.text.strip() for o in outcomes] == ["Trang 0", "Trang 1"]  # type: ignore[union-attr]
        again = await ex.submit(make_pdf(["Trang sau khi khởi động lại"]))
        assert "khởi động lại" in again.text
        assert second in ex.pids and first not in ex.pids
    finally:
        await ex.close()
    assert ex.pids == []


async def test_runner_with_two_workers_stores_every_text(db: Database, org: Org, blobs: BlobStore) -> None:
    clerk = org["vanthu"]
    runner = IngestRunner(db, blobs, processes=2)
    docs = []
    try:
        for i in range(6):
            async with db.uow() as uow:
                upload_id = await upload(uow, clerk, blobs, make_pdf([f"Kế hoạch số {i} của huyện Đông Triều",
                                                                      f"Trang hai, mã riêng vanban{i}"]))
                doc, jobs = await register_incoming(uow, clerk, blobs, **incoming_fields(i + 1), upload_ids=[upload_id])
                await uow.commit()
            docs.append(doc)
            runner.submit(jobs)
        await runner.drain()
        assert len(set(runner.extractor.pids)) == 2
    finally:
        await runner.stop()
    async with db.uow(readonly=True) as uow:
        for i, doc in enumerate(docs):
            hits = await search.search(uow, clerk, f"vanban{i} ke hoach dong trieu")
            assert [h.document.id for h in hits] == [doc.id]
