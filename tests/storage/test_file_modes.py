"""Data files and directories the server creates are its own account's only (0600/0700), whatever the umask.

A real server process (the ``eoffice serve`` path: ``Settings.from_env`` and ``create_app``) started under
umask 000 creates var/, the SQLite database with its -wal and -shm, the blob store and the key directory;
a file is uploaded. Nothing it created may be readable by group or others.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage import keys
from storage.blobs.local import LocalBlobStore
from storage.migrate import migrate
from storage.private_files import create_private_file, private_dir, tighten
from tests.web.test_ws_redis import Proc, _start, _wait_healthy

ROOT = Path(__file__).resolve().parents[2]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def wide_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_helpers_ignore_the_umask(tmp_path: Path, wide_umask: None) -> None:
    private_dir(tmp_path / "a" / "b" / "c")
    for d in ("a", "a/b", "a/b/c"):
        assert _mode(tmp_path / d) == 0o700, d
    assert create_private_file(tmp_path / "a" / "tệp", "Ủy ban nhân dân".encode())
    assert _mode(tmp_path / "a" / "tệp") == 0o600
    assert not create_private_file(tmp_path / "a" / "tệp", "ghi đè".encode())  # never overwrites
    assert (tmp_path / "a" / "tệp").read_bytes() == "Ủy ban nhân dân".encode()
    old = tmp_path / "cu.db"
    old.write_bytes(b"x")
    old.chmod(0o644)
    tighten(old)
    assert _mode(old) == 0o600


def test_an_old_var_secret_key_moves_out_of_the_data_directory(tmp_path: Path, wide_umask: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "secret_key").write_text("bí-mật-cũ-trong-var")
    monkeypatch.setenv("EOFFICE_KEY_DIR", str(tmp_path / "state" / "keys"))
    monkeypatch.delenv("EOFFICE_SECRET_KEY", raising=False)
    assert keys.load_secret_key(var) == "bí-mật-cũ-trong-var"  # sessions and open polls keep working
    assert not (var / "secret_key").exists()
    moved = tmp_path / "state" / "keys" / "secret_key"
    assert moved.read_text() == "bí-mật-cũ-trong-var" and _mode(moved) == 0o600
    assert _mode(moved.parent) == 0o700
    assert keys.load_secret_key(var) == "bí-mật-cũ-trong-var"


def test_the_server_creates_private_files_under_a_wide_umask(tmp_path: Path) -> None:
    var = tmp_path / "var"
    key_dir = tmp_path / "state" / "keys"
    env = {k: v for k, v in os.environ.items() if k != "EOFFICE_SECRET_KEY"}
    env.update({
        "EOFFICE_VAR_DIR": str(var),
        "EOFFICE_DATABASE_URL": f"sqlite+aiosqlite:///{var}/eoffice.db",
        "EOFFICE_BLOB_URL": f"file://{var}/blobs",
        "EOFFICE_BROKER_URL": "memory://",
        "EOFFICE_KEY_DIR": str(key_dir),
        "PYTHONPATH": str(ROOT),
    })
    old = os.umask(0)  # the child inherits it
    try:
        migrate(env["EOFFICE_DATABASE_URL"])  # `eoffice serve` migrates first: it creates var/ and the file
        server: Proc = _start(env, tmp_path / "server.log")
    finally:
        os.umask(old)
    try:
        _wait_healthy(server)
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as c:
            assert c.get("/healthz").status_code == 200
    finally:
        server.process.kill()
        server.process.wait(10)
    created = [var, *var.rglob("*"), key_dir, *key_dir.rglob("*")]
    assert var / "eoffice.db" in created and key_dir / "secret_key" in created
    assert (var / "eoffice.db-wal") in created or (var / "eoffice.db-shm") in created
    for p in created:
        want = 0o700 if p.is_dir() else 0o600
        assert _mode(p) == want, f"{p}: {oct(_mode(p))}"


async def test_blobs_are_private_under_a_wide_umask(tmp_path: Path, wide_umask: None) -> None:
    store = LocalBlobStore(tmp_path / "var" / "blobs")

    async def chunks():  # type: ignore[no-untyped-def]
        yield "Biên bản họp Ủy ban nhân dân huyện Đông Triều".encode()

    info = await store.put(chunks(), limit=1 << 20, content_type="application/pdf")
    created = [tmp_path / "var", *(tmp_path / "var").rglob("*")]
    assert store.path(info.key) in created and store.path(info.key).with_name(info.key + ".type") in created
    for p in created:
        assert _mode(p) == (0o700 if p.is_dir() else 0o600), f"{p}: {oct(_mode(p))}"
