"""A long-lived child process with asyncio pipes, started by ``subprocess.Popen`` in a worker thread.

Why not ``asyncio.create_subprocess_exec``: under uvloop (uvicorn's loop when installed) that call forks while
holding the GIL and waits for the child to exec. A child forked while another thread held a lock (the PDF
sandbox pool starting its own workers with ``subprocess`` at the same moment) blocked for ever before exec,
and the whole server process with it: seen in CI, where the API fuzz server froze at start-up with the text
extraction worker half-started. ``subprocess.Popen`` forks in C and goes straight to exec; its pipes are then
handed to the event loop.

``run`` is the one-shot form (LibreOffice and Tesseract in ``eoffice.renditions``, ``pg_dump`` and
``pg_restore`` in ``storage.backup``): the child gets its own session (process group), its output is collected
on the event loop, and past the time limit (or when the caller is cancelled) the whole group is killed,
LibreOffice's own children included. An address-space cap is set by ``prlimit`` before exec (never a Python
``preexec_fn``, which runs Python in the forked child: the very hazard above)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence

# sets the limits, then execs the command: the fallback where util-linux's prlimit is missing
_TRAMPOLINE = ("import os, resource, sys; m = int(sys.argv[1]); "
               "m and resource.setrlimit(resource.RLIMIT_AS, (m, m)); "
               "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); os.execvp(sys.argv[2], sys.argv[2:])")


class Child:
    """The parts of ``asyncio.subprocess.Process`` the PDF workers use: pid, returncode, stdin, stdout, kill,
    wait."""

    def __init__(self, popen: subprocess.Popen[bytes], stdin: asyncio.StreamWriter,
                 stdout: asyncio.StreamReader) -> None:
        self._popen = popen
        self.stdin = stdin
        self.stdout = stdout

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()

    async def wait(self) -> int:
        return await asyncio.get_running_loop().run_in_executor(None, self._popen.wait)


async def start(args: Sequence[str], env: Mapping[str, str]) -> Child:
    """Start ``args`` with piped stdin and stdout (stderr inherited)."""
    loop = asyncio.get_running_loop()
    popen = await loop.run_in_executor(None, lambda: subprocess.Popen(
        list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(env)))
    assert popen.stdin is not None and popen.stdout is not None
    reader = asyncio.StreamReader(loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), popen.stdout)
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop), popen.stdin)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return Child(popen, writer, reader)


def limited(args: Sequence[str], memory: int) -> list[str]:
    """``args`` run with at most ``memory`` bytes of address space (0: no cap) and no core dump."""
    prlimit = shutil.which("prlimit")
    if prlimit is not None:
        return [prlimit, *([f"--as={memory}"] if memory > 0 else []), "--core=0", "--", *args]
    return [sys.executable, "-c", _TRAMPOLINE, str(max(memory, 0)), *args]


async def _exited(popen: subprocess.Popen[bytes]) -> int:
    """Wait for ``popen`` to exit without holding a thread: a pidfd on the event loop where Linux has one."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):
        fd = -1
    if fd < 0:
        delay = 0.005
        while (code := popen.poll()) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        return code
    try:
        done: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, ready)
        try:
            if popen.poll() is None:
                await done
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)
    return popen.wait()  # exited: reaps at once


async def _read_pipe(pipe: object) -> bytes:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    try:
        return await reader.read()
    finally:
        transport.close()


async def _feed(pipe: object, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop), pipe)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):  # the child may exit without reading everything
            await writer.drain()
    finally:
        transport.close()


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        if popen.poll() is None:
            popen.kill()


async def run(args: Sequence[str], env: Mapping[str, str] | None = None, *, input: bytes | None = None,
              seconds: float | None = None, cwd: str | None = None) -> tuple[int, bytes, bytes]:
    """Run ``args`` in a new session and collect (returncode, stdout, stderr). Past ``seconds``
    ``TimeoutError`` is raised after the child's whole process group is killed and reaped; the same happens
    when the caller is cancelled. Whatever the child left running in its group is killed when it exits."""
    loop = asyncio.get_running_loop()
    popen = await loop.run_in_executor(None, lambda: subprocess.Popen(
        list(args), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True))
    assert popen.stdout is not None and popen.stderr is not None
    try:
        async def collect() -> tuple[int, bytes, bytes]:
            feed = _feed(popen.stdin, input) if popen.stdin is not None and input is not None else asyncio.sleep(0)
            out, err, _ = await asyncio.gather(_read_pipe(popen.stdout), _read_pipe(popen.stderr), feed)
            return await _exited(popen), out, err

        code, out, err = await asyncio.wait_for(collect(), seconds)
    except BaseException:  # past the time limit, or cancelled: the group goes, LibreOffice's children too
        _kill_group(popen)
        await asyncio.shield(_exited(popen))
        raise
    finally:
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    _kill_group(popen)  # a stray child left behind in the group
    return code, out, err
