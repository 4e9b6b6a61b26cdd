"""Registration with text extraction vs raw PyMuPDF extraction of the same PDFs.

    .venv/bin/python bench/ingest.py [--quick] [--postgres | --db URL] [--rounds N] [--processes N]

Baseline: open each PDF with PyMuPDF and get the text of every page, in this process.
Measured: per document one request-sized transaction (claim the upload, open and check the
PDF, allocate the arrival number, register, grant, index the metadata, audit, event, commit),
then the background runner has the text extracted, stores it, indexes it and publishes the
event; the clock stops when the last text is stored. Not timed: storing the uploads (they come
before registration, as over HTTP) and starting the extraction workers (once per server).

Like with like: the registration does everything the baseline does (the same get_text of every
page) and more (a second opening of each PDF to check it, the scan check, folding and indexing
the text, durable writes), and never less. Extraction runs in worker processes
(eoffice.pdfworker; as many as the server would start, eoffice.ingest.default_processes: two
with two cores or more), so the server's database work overlaps it on the other core: the wall
ratio profits from that, the CPU ratio (baseline CPU / server + workers' CPU) does not. Both are
printed, with the CPU of the PostgreSQL backends (same machine) and when the last registration
committed (after it, only extraction and storing are left); on a loaded machine the ratios
converge. Rounds alternate baseline and registration and the best of each counts. Ratio =
baseline time / registration time (target >= 0.8). Ends with one JSON line.

The PDFs are generated once and kept under $EOFFICE_BENCH_CACHE (default: the temp directory).
BENCH_PROFILE=file writes cProfile statistics (CPU time) of the registered rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from typing import NamedTuple

import pymupdf

from eoffice import identity, ingest, uploads
from eoffice.documents import register_incoming
from eoffice.org import Role, Unit, UnitKind, User
from storage.blobs import BlobStore, open_blob_store
from storage.db import Database
from storage.migrate import migrate

PG_ADMIN = os.environ.get("EOFFICE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

SENTENCES = [
    "Ủy ban nhân dân tỉnh Quảng Ninh đề nghị các sở, ban, ngành triển khai chính quyền điện tử.",
    "Thực hiện Nghị định số 30/2020/NĐ-CP về công tác văn thư, các cơ quan rà soát quy trình.",
    "Báo cáo kết quả chuyển đổi số cấp xã, phường, thị trấn trong quý IV năm 2026.",
    "Đôn đốc hoàn thành chỉ tiêu giải quyết hồ sơ thủ tục hành chính đúng hạn.",
]


def make_pdf(pages: int, seed: int) -> bytes:
    font = pymupdf.Font("notos")
    doc = pymupdf.open()
    for p in range(pages):
        page = doc.new_page(width=595, height=842)
        w = pymupdf.TextWriter(page.rect)
        text = " ".join(SENTENCES[(seed + p + i) % len(SENTENCES)] for i in range(24))
        w.fill_textbox(pymupdf.Rect(50, 50, 545, 792), text, font=font, fontsize=10)
        w.write_text(page)
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return bytes(data)


def pdfs_for(n: int, pages: int) -> list[bytes]:
    """The bench's PDFs, generated once per machine (making them takes ~2 s each) and kept under
    $EOFFICE_BENCH_CACHE (default: the temp directory); a change of make_pdf changes the key."""
    import hashlib
    import inspect

    key = hashlib.sha256(f"{n}:{pages}:{pymupdf.VersionBind}:{inspect.getsource(make_pdf)}{SENTENCES}".encode())
    root = os.environ.get("EOFFICE_BENCH_CACHE") or os.path.join(tempfile.gettempdir(), "eoffice-bench-ingest")
    path = os.path.join(root, key.hexdigest()[:16])
    if os.path.isdir(path):
        files = sorted(os.listdir(path))
        if len(files) == n:
            out = []
            for name in files:
                with open(os.path.join(path, name), "rb") as f:
                    out.append(f.read())
            return out
    pdfs = [make_pdf(pages, i) for i in range(n)]
    tmp = f"{path}.{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    for i, data in enumerate(pdfs):
        with open(os.path.join(tmp, f"{i:04d}.pdf"), "wb") as f:
            f.write(data)
    with contextlib.suppress(OSError):  # another run may have stored them meanwhile
        os.rename(tmp, path)
    return pdfs


def raw(pdfs: list[bytes]) -> float:
    t = time.perf_counter()
    for data in pdfs:
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            for page in doc:
                page.get_text("text")
    return time.perf_counter() - t


async def setup(url: str, blob_dir: str) -> tuple[Database, BlobStore, User]:
    db = Database(url)
    blobs = open_blob_store(f"file://{blob_dir}")
    async with db.uow() as uow:
        agency = Unit(code="UBND", name="Ủy ban nhân dân tỉnh Quảng Ninh", kind=UnitKind.PROVINCE, is_agency=True)
        uow.session.add(agency)
        await uow.session.flush()
        clerk = await identity.create_user(uow, None, username="vanthu", full_name="Nguyễn Thị Lan",
                                           password="Bench@2026", roles=[Role.CLERK], unit_id=agency.id)
        await uow.commit()
    return db, blobs, clerk


async def registered(db: Database, blobs: BlobStore, clerk: User, runner: ingest.IngestRunner,
                     pdfs: list[bytes], round_no: int) -> Round:
    """Time and CPU to register every PDF, one request-sized transaction each, until its text is
    stored and indexed."""
    async with db.uow() as uow:
        ids = []
        for i, data in enumerate(pdfs):  # uploads happen before registration, as over HTTP
            info = await blobs.put_bytes(data, content_type="application/pdf")
            ids.append((await uploads.record_upload(uow, clerk, info, f"van-ban-{i}.pdf")).id)
        await uow.commit()
    cpu0, worker0, db0 = time.process_time(), worker_cpu(runner), await database_cpu(db)
    t = time.perf_counter()
    for i, upload_id in enumerate(ids):
        async with db.uow() as uow:
            _, jobs = await register_incoming(
                uow, clerk, blobs, sender="Sở Thông tin và Truyền thông", notation=f"{round_no}.{i + 1}/STTTT-VP",
                date_issued=None, doc_type="cong_van", summary=f"Công văn triển khai chuyển đổi số số {i + 1}",
                upload_ids=[upload_id])
            await uow.commit()
        runner.submit(jobs)
    registering = time.perf_counter() - t
    await runner.drain()
    elapsed = time.perf_counter() - t
    server, worker = time.process_time() - cpu0, worker_cpu(runner) - worker0
    db_cpu = await database_cpu(db)
    return Round(elapsed, server + worker, sum(db_cpu.get(pid, 0.0) - db0.get(pid, 0.0) for pid in db_cpu),
                 server, registering)


class Round(NamedTuple):
    wall: float
    cpu: float  # this process and the extraction worker
    db_cpu: float  # PostgreSQL backends on this machine
    server_cpu: float  # this process
    registering: float  # wall seconds until the last registration committed (then only extraction is left)


def proc_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def database_cpu(db: Database) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the bench's database, when the server runs on
    this machine ({} on SQLite, whose work is in this process's CPU already)."""
    if db.dialect != "postgresql":
        return {}
    from sqlalchemy import text

    async with db.uow(readonly=True) as uow:
        pids = (await uow.session.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))).all()
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # not on this machine, or gone
            out[pid] = proc_cpu(pid)
    return out


def worker_cpu(runner: ingest.IngestRunner) -> float:
    """CPU seconds the extraction worker processes have used (Linux /proc)."""
    return sum(proc_cpu(pid) for pid in runner.extractor.pids)


async def compare(url: str, blob_dir: str, pdfs: list[bytes], rounds: int, processes: int
                  ) -> tuple[list[float], list[Round]]:
    """Alternate raw and registered rounds, so that a change in machine load hits both."""
    db, blobs, clerk = await setup(url, blob_dir)
    runner = ingest.IngestRunner(db, blobs, processes=processes)
    await runner.extractor.start()  # once per server process, before its first document: not timed
    raw(pdfs[:2])  # warm-up
    raws, regs = [], []
    try:
        profile = os.environ.get("BENCH_PROFILE")  # a file for cProfile's stats of the registered rounds
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile(time.process_time)  # CPU: what waits for the database is not counted
        for r in range(rounds):
            raws.append(raw(pdfs))
            if prof is not None:
                prof.enable()
            regs.append(await registered(db, blobs, clerk, runner, pdfs, r))
            if prof is not None:
                prof.disable()
        if prof is not None:
            prof.dump_stats(profile)
    finally:
        await runner.stop()
        await blobs.close()
        await db.dispose()
    return raws, regs


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="20 PDFs of 20 pages instead of 50 of 40")
    ap.add_argument("--db", default="", help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--postgres", action="store_true",
                    help=f"a fresh database on the PostgreSQL server of {PG_ADMIN} (dropped afterwards)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each side counts")
    ap.add_argument("--processes", type=int, default=None,
                    help="extraction worker processes (default: the server's, eoffice.ingest.default_processes(); "
                         "0: in a thread of the server process)")
    args = ap.parse_args()
    if args.processes is None:
        args.processes = ingest.default_processes()
    n, pages = (20, 20) if args.quick else (50, 40)
    pdfs = pdfs_for(n, pages)
    pg_name = f"bench_ingest_{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        if args.postgres:
            asyncio.run(_pg(f'CREATE DATABASE "{pg_name}"'))
            url = PG_ADMIN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + "/" + pg_name
        try:
            migrate(url)
            raws, regs = asyncio.run(compare(url, f"{tmp}/blobs", pdfs, args.rounds, args.processes))
        finally:
            if args.postgres:
                asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
    base = min(raws)
    full, cpu, db_cpu, server_cpu, registering = min(regs)
    ratio = base / full
    load = os.getloadavg()[0]
    print(f"{n} PDFs x {pages} pages ({sum(map(len, pdfs)) / 1e6:.1f} MB), {url.split(':', 1)[0]}, "
          f"extraction processes: {args.processes}, load {load:.2f}")
    print(f"raw PyMuPDF extraction:          {base:.3f} s ({n * pages / base:.0f} pages/s)  "
          f"rounds: {', '.join(f'{x:.3f}' for x in raws)}")
    print(f"registration with extraction:    {full:.3f} s ({n * pages / full:.0f} pages/s)  "
          f"rounds: {', '.join(f'{x[0]:.3f}' for x in regs)}")
    print(f"  last registration committed at {registering:.3f} s")
    print(f"  CPU used (server + worker):    {cpu:.3f} s  (raw extraction is one process, CPU = wall), "
          f"server {server_cpu:.3f} s")
    if args.postgres or url.startswith("postgresql"):
        print(f"  CPU of the PostgreSQL backends: {db_cpu:.3f} s  (on this machine; not in the CPU ratio)")
    print(f"ratio (target >= 0.8):           {ratio:.2f}   CPU ratio: {base / cpu:.2f}")
    print(json.dumps({"bench": "ingest", "documents": n, "pages_each": pages, "raw_s": round(base, 4),
                      "registered_s": round(full, 4), "registered_cpu_s": round(cpu, 4),
                      "server_cpu_s": round(server_cpu, 4), "registering_s": round(registering, 4),
                      "database_cpu_s": round(db_cpu, 4),
                      "ratio": round(ratio, 3), "cpu_ratio": round(base / cpu, 3), "target": 0.8,
                      "ok": ratio >= 0.8, "database": url.split(":", 1)[0], "processes": args.processes,
                      "rounds": args.rounds, "load1": round(load, 2)}))


if __name__ == "__main__":
    main()
