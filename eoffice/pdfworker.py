"""Text extraction from PDFs, and the worker process that runs it for the server.

PyMuPDF keeps the GIL while it works: extracting in a thread of the server process stalls the
event loop, and every database round trip, WebSocket frame and page then waits up to the
interpreter's switch interval (5 ms) behind MuPDF. The server therefore extracts in a separate
process, ``python -m eoffice.pdfworker``, which imports nothing but PyMuPDF, reads requests on
stdin and answers on stdout. A PDF that crashes MuPDF takes down the worker, not the server.

Frames both ways: 4-byte big-endian length, then that many bytes.
- request: a JSON header ``{"job": id, "size": n}`` frame, then a frame of the n PDF bytes; or
  ``{"job": id, "path": "..."}`` and an empty frame, for a file the worker reads itself;
- answers: first ``{"ready": true}``; then, in request order, ``{"job": id, "progress": [done, total]}``
  (at most twice a second) and finally ``{"job": id, "pages": [...], "scanned": [...]}`` or
  ``{"job": id, "error": "..."}``.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

SCANNED_MIN_CHARS = 16  # fewer characters than this on a page with images: treated as a scan
PROGRESS_EVERY = 0.25  # seconds between progress answers
HEADER = struct.Struct(">I")
ALLOCATION_FAILED = ("malloc", "realloc", "calloc", "out of memory", "cannot allocate")


def out_of_memory(error_text: str) -> bool:
    """Whether MuPDF's error text says an allocation failed (the address-space cap was reached), which makes the
    file too complex rather than broken."""
    lowered = error_text.lower()
    return any(word in lowered for word in ALLOCATION_FAILED)


@dataclass
class Extraction:
    pages: list[str] = field(default_factory=list)
    scanned: list[int] = field(default_factory=list)  # 1-based page numbers
    rendition: str | None = None  # blob key of the PDF the text comes from, when the original is not a PDF

    @property
    def text(self) -> str:
        return "\n\f".join(self.pages)


def extract_text(data: bytes, progress: Callable[[int, int], None] | None = None) -> Extraction:
    """Text of every page; pages with images and (almost) no text flagged. Blocking."""
    import pymupdf  # in the worker process (or the one PyMuPDF thread), not at import

    out = Extraction()
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        total = doc.page_count
        for i, page in enumerate(doc):
            text = page.get_text("text", sort=False)
            out.pages.append(text)
            if len(text.strip()) < SCANNED_MIN_CHARS and page.get_images(full=False):
                out.scanned.append(i + 1)
            if progress is not None:
                progress(i + 1, total)
    return out


def write_frame(out: BinaryIO, payload: bytes) -> None:
    out.write(HEADER.pack(len(payload)))
    out.write(payload)


def read_frame(inp: BinaryIO) -> bytes | None:
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = inp.read(size)
    return body if len(body) == size else None


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until stdin closes."""
    import pymupdf  # in the worker process (or the one PyMuPDF thread), not at import

    pymupdf.TOOLS.mupdf_display_errors(False)  # errors travel in the answers, not on stderr

    def answer(msg: dict[str, Any]) -> None:
        write_frame(out, json.dumps(msg, ensure_ascii=False).encode())
        out.flush()

    answer({"ready": True})  # imports done: a file's time limit counts from here

    while True:
        header = read_frame(inp)
        if header is None:
            return
        request = json.loads(header)
        data = read_frame(inp)
        if data is None:
            return
        job, last = request["job"], time.monotonic()
        if request.get("path"):  # a file of the local blob store: read here, not sent through the pipe
            try:
                with open(request["path"], "rb") as f:
                    data = f.read()
            except OSError as exc:
                answer({"job": job, "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue

        def progress(done: int, total: int, job: Any = job) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY and done < total:
                last = now
                answer({"job": job, "progress": [done, total]})

        try:
            result = extract_text(data, progress)
        except MemoryError:  # past the memory cap (main): refused, and the worker goes on
            answer({"job": job, "error": "memory", "too_complex": True})
        except Exception as exc:  # a bad PDF: say so and go on with the next one
            text = f"{type(exc).__name__}: {exc}"
            answer({"job": job, "error": text[:300], "too_complex": out_of_memory(text)})
        else:
            answer({"job": job, "pages": result.pages, "scanned": result.scanned})


def main() -> None:
    # The answers get their own copy of stdout; anything else written to stdout (MuPDF's or
    # PyMuPDF's messages about a damaged file) goes to stderr instead of into the frames.
    import resource  # Unix only; the worker caps its own memory

    memory = int(os.environ.get("EOFFICE_PDF_WORKER_MEMORY", "0"))  # eoffice.pdfsandbox.Limits.memory
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
