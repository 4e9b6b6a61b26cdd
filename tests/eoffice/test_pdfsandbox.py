"""A crafted PDF (a few KB that keep MuPDF busy for minutes) is refused within the limits and does
not stall anyone else's pages, search or text extraction (eoffice.pdfsandbox, eoffice.ingest)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eoffice import ingest, pdfpages, pdfsandbox
from meetings import render
from storage.errors import Invalid
from tests.eoffice.conftest import make_pdf
from tests.eoffice.hostile_pdfs import full_page_fills, nested_text, nested_xobjects, page_of_size

NORMAL = make_pdf([f"Trang {n}: Ủy ban nhân dân huyện Đông Triều" for n in range(1, 4)])
HOSTILE = full_page_fills(40)  # ~100 KB; minutes of MuPDF work for one page, little memory: the time limit stops it
NORMAL_KEY, HOSTILE_KEY = "c" * 64, "d" * 64
TIMEOUT = 3.0
MEMORY = 768 * 1024 * 1024


@pytest.fixture(autouse=True)
def tight_limits() -> Iterator[None]:
    before = pdfsandbox.limits()
    pdfsandbox.configure(pdfsandbox.Limits(timeout=TIMEOUT, extract_timeout=TIMEOUT, memory=MEMORY, processes=2,
                                           max_pages=3))
    for key in (NORMAL_KEY, HOSTILE_KEY):
        pdfpages.forget(key)
    pdfpages.clear_cache()
    yield
    pdfpages.clear_cache()
    pdfsandbox.configure(before)


def _address_space_limit(pid: int) -> str:
    return next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines() if x.startswith("Max address space"))


async def _until(cond: object, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_hostile_page_is_refused_in_time_and_others_pages_answer_meanwhile() -> None:
    async def hostile() -> bytes:
        return HOSTILE

    async def normal() -> bytes:
        return NORMAL

    await pdfpages.page_image(NORMAL_KEY, normal, 1, 200)  # both workers up (the first start imports PyMuPDF)
    await pdfsandbox.start()
    pids = set(pdfsandbox.pids())
    assert len(pids) == 2

    started = time.monotonic()
    attack = asyncio.ensure_future(pdfpages.page_image(HOSTILE_KEY, hostile, 1, 800))
    await _until(lambda: pdfsandbox.busy() == 1)  # the hostile page is in a worker now
    for page in (2, 3):  # another reader's pages, not cached yet: rendered by the other worker
        t = time.monotonic()
        image = await pdfpages.page_image(NORMAL_KEY, normal, page, 800)
        assert image.startswith(b"\x89PNG") and time.monotonic() - t < 2.0
        assert not attack.done()
    found = await pdfsandbox.with_doc(NORMAL_KEY, normal, render.search, "Đông Triều")
    assert found["total"] == 3  # the meeting room's search runs meanwhile too

    with pytest.raises(pdfsandbox.TooComplex, match="quá phức tạp") as refused:
        await attack
    took = time.monotonic() - started
    assert TIMEOUT <= took < TIMEOUT + 5, took
    assert refused.value.status == 422
    assert len(pdfsandbox.pids()) == 1 and set(pdfsandbox.pids()) < pids  # the busy worker was killed

    t = time.monotonic()  # asked again: refused at once, from memory, holding no worker
    with pytest.raises(pdfsandbox.TooComplex):
        await pdfpages.page_image(HOSTILE_KEY, hostile, 1, 400)
    assert time.monotonic() - t < 0.5 and pdfsandbox.busy() == 0
    assert (await pdfpages.page_image(NORMAL_KEY, normal, 1, 300)).startswith(b"\x89PNG")  # a new worker


async def test_workers_address_space_is_capped() -> None:
    await pdfsandbox.call(len, b"x")
    pid = pdfsandbox.pids()[0]
    line = _address_space_limit(pid)
    assert line.split()[3:5] == [str(MEMORY), str(MEMORY)]
    with pytest.raises(pdfsandbox.TooComplex):  # past the cap: refused, and the worker goes on
        await pdfsandbox.call(bytearray, MEMORY)
    assert pid in pdfsandbox.pids()


async def test_a_page_that_exhausts_memory_is_refused_as_too_complex_and_the_worker_goes_on() -> None:
    async def forms() -> bytes:
        return nested_xobjects(7)  # 3 KB of nested forms: MuPDF's allocations fail under the cap

    async def normal() -> bytes:
        return NORMAL

    pdfsandbox.configure(dataclasses.replace(pdfsandbox.limits(), timeout=60))  # the cap, not the clock, stops it
    await pdfpages.page_image(NORMAL_KEY, normal, 1, 200)
    pids = set(pdfsandbox.pids())
    with pytest.raises(pdfsandbox.TooComplex, match="quá phức tạp") as refused:
        await pdfpages.page_image(HOSTILE_KEY, forms, 1, 800)
    assert refused.value.details["reason"] == "memory"
    assert pids <= set(pdfsandbox.pids())  # not a broken file, not a dead worker
    assert (await pdfpages.page_image(NORMAL_KEY, normal, 2, 300)).startswith(b"\x89PNG")


@pytest.mark.parametrize(("bomb", "reason"), [(nested_text(7), "memory"), (None, "timeout")])
async def test_a_hostile_file_does_not_block_text_extraction_of_other_files(bomb: bytes | None, reason: str) -> None:
    if reason == "memory":  # the cap, not the clock, stops it, however busy the machine is
        pdfsandbox.configure(dataclasses.replace(pdfsandbox.limits(), extract_timeout=60))
    extractor = ingest.Extractor(processes=1)  # one worker: the normal file waits behind the bomb
    try:
        await extractor.start()
        first = extractor.pid
        assert first is not None
        started = time.monotonic()
        if bomb is None:  # a file MuPDF never finishes: the worker is stopped while it holds it
            os.kill(first, signal.SIGSTOP)
            bomb = NORMAL
        bad = extractor.submit_nowait(bomb)
        good = extractor.submit_nowait(NORMAL)
        with pytest.raises(pdfsandbox.TooComplex, match="quá phức tạp") as refused:
            await bad
        assert refused.value.details["reason"] == reason
        assert time.monotonic() - started < pdfsandbox.limits().extract_timeout + 5
        text = (await good).text
        assert "Đông Triều" in text
        if reason == "timeout":
            assert extractor.pid != first  # a worker past its time is replaced
        assert extractor.pid is not None and str(MEMORY) in _address_space_limit(extractor.pid)
    finally:
        await extractor.close()


@pytest.mark.parametrize(("data", "reason"), [
    (make_pdf(["một", "hai", "ba", "bốn"]), "pages"),
    (page_of_size(100_000, 400), "page_size"),
    (make_pdf(["mật"], password="bí mật"), "encrypted"),
    (b"%PDF-1.7\n" + bytes(range(256)) * 8, "corrupt"),
])
async def test_upload_inspection_refuses_what_would_not_display(data: bytes, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        await ingest.inspect(data, "công văn.pdf")
    assert refused.value.details["reason"] == reason and "«công văn.pdf»" in refused.value.message
    assert refused.value.status in (400, 422)

