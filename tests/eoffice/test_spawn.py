"""``eoffice.spawn.run``: one-shot children started without ``asyncio.create_subprocess_exec`` (issue #17).

On the default loop and on uvloop (uvicorn's loop, where the start-up freeze was seen): output and exit code
collected, several MB on both pipes with input fed at the same time without a deadlock, and a child past its
time limit killed together with the children it started (no orphan left)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from eoffice import spawn

LOOPS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return LOOPS[request.param]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone: it runs nothing and holds no pipe)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_until(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_output_exit_code_and_input_are_collected(run: Callable[..., Any]) -> None:
    code = ("import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data.decode().upper().encode()); "
            "sys.stderr.write('lỗi nhỏ'); sys.exit(3)")
    rc, out, err = run(spawn.run([sys.executable, "-c", code], dict(os.environ),
                                 input="Công văn số 12".encode(), seconds=60))
    assert rc == 3
    assert out == "CÔNG VĂN SỐ 12".encode()
    assert err.decode() == "lỗi nhỏ"


def test_megabytes_on_both_pipes_do_not_deadlock(run: Callable[..., Any]) -> None:
    size = 6 << 20
    # reads everything first, then writes stdout and stderr interleaved: a parent that drains one pipe at a
    # time, or writes all input before reading, would block for ever on a full pipe buffer
    code = ("import sys; data = sys.stdin.buffer.read(); n = len(data); "
            "[(sys.stdout.buffer.write(data[i:i + 65536]), sys.stderr.buffer.write(data[i:i + 65536])) "
            "for i in range(0, n, 65536)]")
    payload = os.urandom(size)
    rc, out, err = run(spawn.run([sys.executable, "-c", code], dict(os.environ), input=payload, seconds=120))
    assert rc == 0
    assert out == payload and err == payload


def test_past_time_limit_the_child_and_its_children_are_killed(run: Callable[..., Any], tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = ("import os, subprocess, sys, time; "
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}'); time.sleep(600)")

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await spawn.run([sys.executable, "-c", code], dict(os.environ), seconds=5)
        return time.monotonic() - started

    elapsed = run(main())
    assert elapsed < 120  # the time limit held (generous: the machine is shared)
    assert pids.exists(), "the child never started its grandchild within the limit"
    child, grandchild = map(int, pids.read_text().split())
    assert not _alive(child)
    assert _wait_until(lambda: not _alive(grandchild)), "the grandchild outlived the time limit (orphan)"


def test_cancelled_caller_kills_the_group(run: Callable[..., Any], tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = ("import os, subprocess, sys, time; "
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}'); time.sleep(600)")

    async def main() -> None:
        task = asyncio.create_task(spawn.run([sys.executable, "-c", code], dict(os.environ), seconds=600))
        deadline = time.monotonic() + 60
        while not pids.exists() or len(pids.read_text().split()) < 2:
            assert time.monotonic() < deadline, "the child never started"
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    child, grandchild = map(int, pids.read_text().split())
    assert not _alive(child)
    assert _wait_until(lambda: not _alive(grandchild)), "the grandchild outlived the cancelled call"


@pytest.mark.parametrize("prlimit", [True, False], ids=["prlimit", "trampoline"])
def test_memory_cap_applies_before_exec(run: Callable[..., Any], prlimit: bool,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not prlimit:  # where util-linux's prlimit is missing, a Python trampoline sets the limits then execs
        monkeypatch.setattr(spawn.shutil, "which", lambda name: None)
    code = ("import resource; "
            "print(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CORE)[1])")
    rc, out, _ = run(spawn.run(spawn.limited([sys.executable, "-c", code], 900 << 20), dict(os.environ), seconds=60))
    assert rc == 0
    assert out.split() == [str(900 << 20).encode(), b"0"]
