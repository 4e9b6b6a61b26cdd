"""`eoffice migrate` takes turns (PostgreSQL advisory lock, SQLite file lock) and `eoffice serve` refuses a
database that is not migrated, or not up to date, with a message in Vietnamese and English."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from storage.migrate import LOCK_KEY, WAITING, SchemaState, migrate, schema_state
from tests.conftest import PG_ADMIN, REDIS_URL, free_port, scratch_pg_database

ROOT = Path(__file__).resolve().parents[2]
SECRET = "khóa-bí-mật-thử-nghiệm-di-chuyển"


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "EOFFICE_DATABASE_URL": url, "EOFFICE_VAR_DIR": str(tmp_path / "var"),
            "EOFFICE_BLOB_URL": f"file://{tmp_path}/blobs", "EOFFICE_SECRET_KEY": SECRET,
            "EOFFICE_BROKER_URL": "memory://", "PYTHONPATH": str(ROOT)}


def _cli(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """``eoffice ARGS``; a server's output goes to ``log`` (a pipe nobody reads would fill and block it)."""
    if log is not None:
        with log.open("w") as out:
            return subprocess.Popen([sys.executable, "-m", "web.cli", *args], cwd=ROOT, env=env, text=True,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return subprocess.Popen([sys.executable, "-m", "web.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


async def _finish(proc: subprocess.Popen[str], within: float = 120) -> tuple[int, str]:
    out, err = await asyncio.to_thread(proc.communicate, timeout=within)
    return proc.returncode, out + err


async def _both_wait(procs: list[subprocess.Popen[str]], waiters: object) -> None:
    deadline = time.monotonic() + 60
    while await waiters() < len(procs):  # type: ignore[operator]
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline, "the migrations did not reach the lock"
        await asyncio.sleep(0.2)


async def test_two_migrations_of_an_empty_postgresql_database_take_turns(tmp_path: Path) -> None:
    async with scratch_pg_database("eoffice_migrate") as url:
        name = url.rsplit("/", 1)[1]
        holder = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)  # an operator's migration in progress
            procs = [_cli(_env(url, tmp_path / f"p{i}"), "migrate") for i in range(2)]

            async def waiters() -> int:
                return int(await holder.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1", name))

            await _both_wait(procs, waiters)
            assert (await schema_state(url)).current == ()  # nobody got past the lock
            await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
            results = [await _finish(p) for p in procs]
        finally:
            await holder.close()
        for code, output in results:
            assert code == 0, output
            assert WAITING in output and "Cơ sở dữ liệu đã được cập nhật" in output
        assert (await schema_state(url)).up_to_date


async def test_two_migrations_of_a_new_sqlite_file_take_turns(tmp_path: Path) -> None:
    db = tmp_path / "var" / "eoffice.db"
    url = f"sqlite+aiosqlite:///{db}"
    db.parent.mkdir(parents=True)
    fd = os.open(f"{db}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        procs = [_cli(_env(url, tmp_path), "migrate") for _ in range(2)]
        inode = os.fstat(fd).st_ino

        async def waiters() -> int:  # blocked flock requests on the lock file, as the kernel lists them
            locks = await asyncio.to_thread(Path("/proc/locks").read_text)
            return sum(1 for line in locks.splitlines()
                       if "->" in line and "FLOCK" in line and line.split()[-3].endswith(f":{inode}"))

        await _both_wait(procs, waiters)
        assert not db.exists()  # both wait, nothing written
        fcntl.flock(fd, fcntl.LOCK_UN)
        results = [await _finish(p) for p in procs]
    finally:
        os.close(fd)
    for code, output in results:
        assert code == 0 and WAITING in output, output
    assert (await schema_state(url)).up_to_date


async def test_serve_refuses_an_unmigrated_or_outdated_database(tmp_path: Path) -> None:
    db = tmp_path / "var" / "eoffice.db"
    url = f"sqlite+aiosqlite:///{db}"
    env = _env(url, tmp_path)
    port = str(free_port())

    code, output = await _finish(_cli(env, "serve", "--port", port), 60)
    assert code == 3, output
    assert "chưa được khởi tạo" in output and "has not been migrated" in output and "eoffice migrate" in output
    assert not db.exists()  # looking did not create an empty database

    await asyncio.to_thread(migrate, url, "0017")
    code, output = await _finish(_cli(env, "serve", "--port", port), 60)
    assert code == 3, output
    assert "0017" in output and "cần cập nhật" in output and "must be upgraded" in output

    server = _cli(env, "serve", "--port", port, "--migrate", log=tmp_path / "serve.log")  # migrate, then serve
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    r = await client.get(f"http://127.0.0.1:{port}/readyz")
                assert r.status_code == 200, r.text
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.2)
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)
    assert (await schema_state(url)).up_to_date


def test_a_database_newer_than_the_code_is_named_so() -> None:
    state = SchemaState(current=("9999",), head=("0018",), _known=frozenset({"0017", "0018"}))
    assert not state.up_to_date and state.ahead
    assert "mới hơn mã nguồn" in state.message() and "newer than this code" in state.message()


async def test_serve_workers_need_a_shared_broker_and_then_all_answer(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/var/eoffice.db"
    await asyncio.to_thread(migrate, url)
    env = _env(url, tmp_path)
    port = str(free_port())
    code, output = await _finish(_cli(env, "serve", "--port", port, "--workers", "2"), 60)
    assert code == 2 and "EOFFICE_BROKER_URL=redis://" in output and "broker dùng chung" in output

    env["EOFFICE_BROKER_URL"] = f"{REDIS_URL}?channel=test:{uuid.uuid4().hex}"
    server = _cli(env, "serve", "--port", port, "--workers", "2", log=tmp_path / "workers.log")
    pids: set[str] = set()
    try:
        deadline = time.monotonic() + 90
        while len(pids) < 2:  # both workers take connections on the one port
            assert server.poll() is None, (tmp_path / "workers.log").read_text()
            assert time.monotonic() < deadline, f"only {pids} answered:\n{(tmp_path / 'workers.log').read_text()}"
            try:
                async with httpx.AsyncClient(timeout=5) as client:  # a new connection each time
                    pids.add(str((await client.get(f"http://127.0.0.1:{port}/livez")).json()["pid"]))
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)
    assert "Logging error" not in (tmp_path / "workers.log").read_text()
