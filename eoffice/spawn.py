"""A long-lived child process with asyncio pipes, started by ``subprocess.Popen`` in a worker thread.

Why not ``asyncio.create_subprocess_exec``: under uvloop (uvicorn's loop when installed) that call forks while
holding the GIL and waits for the child to exec. A child forked while another thread held a lock (the PDF
sandbox pool starting its own workers with ``subprocess`` at the same moment) blocked for ever before exec,
and the whole server process with it: seen in CI, where the API fuzz server froze at start-up with the text
extraction worker half-started. ``subprocess.Popen`` forks in C and goes straight to exec; its pipes are then
handed to the event loop."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping, Sequence


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
