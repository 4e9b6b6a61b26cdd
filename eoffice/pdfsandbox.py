"""PyMuPDF work on uploaded PDFs, in worker processes with a time and a memory limit.

A PDF is a program: a 3 KB file of nested forms or a 100 KB one with a 40 MB content stream keeps
MuPDF busy for minutes. In the server's own PyMuPDF thread that stalled every page of every
user behind it (and, holding the GIL, the event loop too). Here each job runs in one of a few
worker processes (``python -m eoffice.pdfsandbox``):

* the child's address space is capped (``RLIMIT_AS``): an allocation past it fails inside the
  job, which is refused, and the worker goes on;
* a job that runs longer than ``timeout`` has its worker killed (SIGKILL) and replaced at the next
  job; the caller gets ``TooComplex`` (a 422 with a Vietnamese message), remembered by callers
  so the same page is not tried again.

Interface (kept small so the module can move to a ``pdf/`` package):
``configure(Limits)``, ``await call(fn, *args)`` for a function of plain data (inspecting an
upload), ``await with_doc(key, load, fn, *args)`` for ``fn(doc, *args)`` on the document stored
under ``key`` (kept open in the worker, in a small LRU: turning pages does not reopen the file),
``forget(key)``, ``shutdown()``. ``fn`` must be a module-level function (it is pickled by name).

Each worker serves one job at a time; a job waits for a free worker (``processes`` of them), so a
hostile file takes one worker for at most ``timeout`` while the others serve everybody else. The
pipes are blocking and driven from dedicated threads: no event loop is tied to a worker.

Frames both ways: 4-byte big-endian length, then a pickle (the child is ours: trusted both ways).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, TypeVar

from eoffice.pdfworker import out_of_memory
from storage.errors import AppError, Invalid

T = TypeVar("T")
Loader = Callable[[], Awaitable[bytes]]
HEADER = struct.Struct(">I")
DOC_CACHE = 8  # open documents kept in each worker
STARTUP_TIMEOUT = 60.0  # seconds a new worker may take to import PyMuPDF (not counted in a job's limit)

TOO_COMPLEX = "Không thể hiển thị trang này: tệp PDF quá phức tạp (vượt giới hạn thời gian hoặc bộ nhớ xử lý)."
BROKEN = "Không thể hiển thị trang này: tệp PDF bị hỏng."


class TooComplex(Invalid):
    """The job went past the time or memory limit."""

    status = 422
    code = "pdf_too_complex"


@dataclass(frozen=True)
class Limits:
    timeout: float = 15.0  # seconds one job (a page, an inspection, a search) may take
    extract_timeout: float = 120.0  # seconds the text extraction of one file may take
    memory: int = 1 << 30  # bytes of address space of a worker process
    processes: int = 2  # workers: a hostile file holds one of them for at most `timeout`
    max_pages: int = 2000  # an upload with more pages is refused
    max_page_points: float = 14400.0  # PDF's own limit on a page side (200 inches)


_limits = Limits()


def configure(limits: Limits) -> None:
    """Set the limits; running workers are replaced at their next job."""
    global _limits
    if limits == _limits:
        return
    _pool.restart()
    _limits = limits


def limits_from(settings: Any) -> Limits:
    """The limits a ``storage.settings.Settings`` asks for."""
    return Limits(timeout=settings.pdf_timeout, extract_timeout=settings.pdf_extract_timeout,
                  memory=settings.pdf_memory_mb * 1024 * 1024, processes=settings.pdf_processes,
                  max_pages=settings.pdf_max_pages)


def limits() -> Limits:
    return _limits


# ---------------------------------------------------------------- the parent side


class _Worker:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.keys: OrderedDict[str, None] = OrderedDict()  # documents it has open (as far as we know)
        self.drop: set[str] = set()  # forgotten keys to close at its next job
        self.busy = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def _start(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.kill()
            env = dict(os.environ, EOFFICE_PDF_WORKER_MEMORY=str(_limits.memory))
            self.proc = proc = subprocess.Popen([sys.executable, "-m", "eoffice.pdfsandbox"], stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, env=env, start_new_session=True)
            self.keys.clear()
            self.drop.clear()
            assert proc.stdout is not None
            try:  # it says it is ready once its imports are done: they do not count against a job
                _read_exactly(proc.stdout, HEADER.size, time.monotonic() + STARTUP_TIMEOUT)
            except (TimeoutError, OSError, EOFError):
                self.kill()
                raise RuntimeError("PDF worker did not start") from None
        return self.proc

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        self.keys.clear()
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for f in (proc.stdin, proc.stdout):
                if f is not None:
                    f.close()

    def request(self, msg: tuple[Any, ...], timeout: float) -> tuple[Any, ...]:
        """Send one job and wait for its answer (blocking); kill the worker past ``timeout``."""
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        payload = pickle.dumps((sorted(self.drop), *msg), protocol=pickle.HIGHEST_PROTOCOL)
        self.drop.clear()
        try:
            proc.stdin.write(HEADER.pack(len(payload)) + payload)
            proc.stdin.flush()
            deadline = time.monotonic() + timeout
            head = _read_exactly(proc.stdout, HEADER.size, deadline)
            body = _read_exactly(proc.stdout, HEADER.unpack(head)[0], deadline)
        except TimeoutError:
            self.kill()
            raise TooComplex(TOO_COMPLEX, reason="timeout") from None
        except (OSError, EOFError, ValueError):
            self.kill()  # it died in the job: MuPDF crashed, or the memory cap hit outside MuPDF
            raise TooComplex(TOO_COMPLEX, reason="worker") from None
        return pickle.loads(body)  # type: ignore[no-any-return]


def _read_exactly(f: IO[bytes], size: int, deadline: float) -> bytes:
    fd = f.fileno()
    chunks, left = [], size
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Pool:
    """Workers and the threads that talk to them (one thread per worker: a job never waits for a
    thread while a worker is free, and waiting jobs queue in the executor, holding no thread)."""

    def __init__(self) -> None:
        # a condition: a job that finds every worker busy (``start_all`` holds one while it starts) waits for one
        self._lock = threading.Condition()
        self._workers: list[_Worker] = []
        self._executor: ThreadPoolExecutor | None = None

    def _ensure(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._workers = [_Worker() for _ in range(max(1, _limits.processes))]
                self._executor = ThreadPoolExecutor(len(self._workers), thread_name_prefix="pdfsandbox")
            return self._executor

    def _take(self, key: str | None) -> _Worker:
        with self._lock:
            free = [w for w in self._workers if not w.busy]
            while self._workers and not free:
                self._lock.wait(1.0)
                free = [w for w in self._workers if not w.busy]
            worker = next((w for w in free if key is not None and key in w.keys), None) or \
                next((w for w in free if w.pid is not None), None) or free[0]
            worker.busy = True
            return worker

    def _job(self, key: str | None, msg: tuple[Any, ...]) -> tuple[Any, ...]:
        worker = self._take(key)
        try:
            answer = worker.request(msg, _limits.timeout)
            if key is not None and answer[0] in ("ok", "app", "error"):
                worker.keys[key] = None
                worker.keys.move_to_end(key)
                while len(worker.keys) > DOC_CACHE:
                    worker.keys.popitem(last=False)
            return answer
        finally:
            with self._lock:
                worker.busy = False
                self._lock.notify_all()

    async def job(self, key: str | None, msg: tuple[Any, ...]) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ensure(), self._job, key, msg)

    def forget(self, key: str) -> None:
        with self._lock:
            for w in self._workers:
                w.keys.pop(key, None)
                w.drop.add(key)

    def has(self, key: str) -> bool:
        with self._lock:
            return any(key in w.keys for w in self._workers)

    def start_all(self) -> None:
        """Start every worker that is not running and not in a job (blocking)."""
        self._ensure()
        for w in list(self._workers):
            with self._lock:
                if w.busy:
                    continue
                w.busy = True
            try:
                w._start()
            finally:
                with self._lock:
                    w.busy = False
                    self._lock.notify_all()

    def busy(self) -> int:
        with self._lock:
            return sum(w.busy for w in self._workers)

    def pids(self) -> list[int]:
        return [pid for w in self._workers if (pid := w.pid) is not None]

    def restart(self) -> None:
        """Stop every worker and the threads (running jobs finish first); new ones start on demand."""
        with self._lock:
            executor, self._executor = self._executor, None
            workers, self._workers = self._workers, []
        if executor is not None:
            executor.shutdown(wait=True)
        for w in workers:
            w.kill()


_pool = _Pool()


def _unwrap(answer: tuple[Any, ...]) -> Any:
    kind = answer[0]
    if kind == "ok":
        return answer[1]
    if kind == "app":
        known: list[type[AppError]] = [TooComplex, *AppError.__subclasses__(), AppError]
        cls = next((c for c in known if c.__name__ == answer[1]), Invalid)
        raise cls(answer[2], **answer[3])
    if kind == "memory":
        raise TooComplex(TOO_COMPLEX, reason="memory")
    raise Invalid(BROKEN, reason="corrupt", detail=str(answer[1])[:200])


async def call(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker, within the limits."""
    return _unwrap(await _pool.job(None, ("call", None, fn, args, None)))  # type: ignore[no-any-return]


async def with_doc(key: str, load: Loader, fn: Callable[..., T], *args: Any) -> T:
    """``fn(doc, *args)`` in a worker on the PDF stored under ``key``, opened from ``load()`` if that
    worker does not have it open."""
    data = None if _pool.has(key) else await load()  # no worker has it open: send it with the job
    answer = await _pool.job(key, ("call", key, fn, args, data))
    if answer[0] == "missing":
        data = await load()
        answer = await _pool.job(key, ("call", key, fn, args, data))
    return _unwrap(answer)  # type: ignore[no-any-return]


async def start() -> None:
    """Start every worker now (each imports PyMuPDF once), rather than at the first pages asked for."""
    await asyncio.get_running_loop().run_in_executor(None, _pool.start_all)


def forget(key: str) -> None:
    """Close the document ``key`` in every worker (at each one's next job)."""
    _pool.forget(key)


def pids() -> list[int]:
    """Running workers' process ids."""
    return _pool.pids()


def busy() -> int:
    """Workers running a job now."""
    return _pool.busy()


def shutdown() -> None:
    _pool.restart()


# ---------------------------------------------------------------- the child side


def _serve(inp: BinaryIO, out: BinaryIO) -> None:
    import pymupdf  # child process only (python -m eoffice.pdfsandbox)

    import eoffice.pdfpages  # noqa: F401  (the page functions jobs name: imported before, not in, the first job)

    pymupdf.TOOLS.mupdf_display_errors(False)
    docs: OrderedDict[str, Any] = OrderedDict()
    out.write(HEADER.pack(0))  # ready
    out.flush()

    def send(msg: tuple[Any, ...]) -> None:
        payload = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(HEADER.pack(len(payload)) + payload)
        out.flush()

    while True:
        head = inp.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        body = inp.read(HEADER.unpack(head)[0])
        try:
            drop, _kind, key, fn, args, data = pickle.loads(body)
            for k in drop:
                if k in docs:
                    docs.pop(k).close()
            if key is None:
                send(("ok", fn(*args)))
                continue
            if key not in docs:
                if data is None:
                    send(("missing",))
                    continue
                docs[key] = pymupdf.open(stream=data, filetype="pdf")
                data = None
                while len(docs) > DOC_CACHE:
                    docs.popitem(last=False)[1].close()
            docs.move_to_end(key)
            send(("ok", fn(docs[key], *args)))
        except AppError as exc:
            send(("app", type(exc).__name__, exc.message, exc.details))
        except MemoryError:
            send(("memory",))
        except Exception as exc:  # a broken file, or MuPDF out of memory under the cap
            text = f"{type(exc).__name__}: {exc}"
            send(("memory",) if out_of_memory(text) or "memory" in text.lower() else ("error", text[:300]))


def main() -> None:
    import resource  # Unix only; the child caps its own memory

    memory = int(os.environ.get("EOFFICE_PDF_WORKER_MEMORY", "0"))
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's; it stops us
    answers = os.fdopen(os.dup(1), "wb")  # MuPDF's own messages go to stderr, not into the frames
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
