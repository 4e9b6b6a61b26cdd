"""Backup and restore of the database and the blob store while the server runs (``eoffice backup``,
``restore``, ``restore-check``).

An archive is one uncompressed tar file (mode 0600), in this order::

    database.sqlite | database.pgdump    the database at one instant
    blobs/<sha256>                        every blob of the store, under its key (which is its sha256)
    keys/secret_key                       only with ``--include-keys`` (see below)
    manifest.json                         written last: an archive without it is incomplete

Consistency while writes go on: the database is copied first, at one instant -- SQLite through its online
backup API (one step, a read transaction: WAL writers are not blocked), PostgreSQL through ``pg_dump`` run
on a snapshot exported by a repeatable-read transaction in which the row counts and blob references are
read as well. The blobs are listed *after* that instant. A blob is stored before any row refers to it and
is never overwritten, so every blob the copied database refers to is in the listing; blobs put later are
copied too (harmless, unreferenced). Every blob is read back and hashed: its bytes must match its key.

The archive is written to a temporary name beside the target and renamed into place once complete
(fsynced), so an interrupted backup leaves no file that looks like a finished one.

Key material (``storage.keys``): the server's secret keys the audit chain's MAC and wraps open secret polls'
ballot keys. It is *not* in the archive unless asked for (``include_keys``): keep it apart from the data
backups (another medium, another custodian), or the archive alone authenticates a forged audit chain.
Without it a restored audit chain cannot be verified and secret polls open at backup time cannot be counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, make_url

from eoffice import spawn  # stdlib only: no domain code comes with it
from storage.blobs import BlobStore, is_key
from storage.db import Base
from storage.errors import NotFound
from storage.migrate import alembic_config, migrate
from storage.private_files import FILE_MODE, create_private_file, private_dir

FORMAT = "eoffice-backup"
VERSION = 1
MANIFEST = "manifest.json"
DB_SQLITE = "database.sqlite"
DB_PG = "database.pgdump"
KEY_MEMBER = "keys/secret_key"
CHUNK = 1024 * 1024

Progress = Callable[[str, int], Callable[[int], None]]  # (label, total) -> show(done)


class BackupError(Exception):
    """What went wrong, for the operator (Vietnamese); the CLI prints it and exits non-zero."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _no_progress(_label: str, _total: int) -> Callable[[int], None]:
    return lambda _done: None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------ databases

def blob_columns() -> dict[str, list[str]]:
    """Table -> columns holding blob keys (``*blob_key``, ``source_key``), from the models."""
    import storage.models  # noqa: F401  (every table registered; storage.models imports the domain schemas, which import storage: a module-level import would be a circle)

    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        cols = [c.name for c in table.columns if c.name.endswith("blob_key") or c.name == "source_key"]
        if cols:
            found[table.name] = cols
    return found


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("Chỉ sao lưu/khôi phục được cơ sở dữ liệu SQLite dạng tệp.")
    return Path(url.database)


def _sqlite_facts(path: Path) -> tuple[list[str], dict[str, int], set[str]]:
    """(alembic revisions, rows per table, referenced blob keys) of a SQLite file."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        counts = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}
        revision = ([r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
                    if "alembic_version" in tables else [])
        refs: set[str] = set()
        for table, cols in blob_columns().items():
            if table in tables:
                for col in cols:
                    refs.update(r[0] for r in conn.execute(f'SELECT "{col}" FROM "{table}" WHERE "{col}" IS NOT NULL'))
    finally:
        conn.close()
    return sorted(revision), counts, {k for k in refs if k and is_key(k)}


def _sqlite_snapshot(source: Path, target: Path) -> None:
    """The online backup API in one step: a consistent copy while other connections write."""
    if not source.exists():
        raise BackupError(f"Không có tệp cơ sở dữ liệu {source}.")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file in the archive
    finally:
        dst.close()
        src.close()


def pg_env(url: URL) -> dict[str, str]:
    """libpq's variables for ``url`` (the password in the environment, never on a command line)."""
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[var] = str(value)
    return env


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"Không tìm thấy lệnh {name} trong PATH: cài gói postgresql-client cùng phiên bản "
                          f"với máy chủ PostgreSQL (ví dụ apt-get install postgresql-client).")
    return path


async def _run(args: list[str], env: dict[str, str], what: str) -> None:
    # eoffice.spawn, not asyncio.create_subprocess_exec: a fork under uvloop can hang before exec (see there)
    code, _out, err = await spawn.run(args, env)
    if code != 0:
        raise BackupError(f"{what} thất bại (mã {code}): {err.decode(errors='replace').strip()[-800:]}")


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_snapshot(url: URL, target: Path) -> tuple[list[str], dict[str, int], set[str]]:
    """pg_dump of one exported snapshot; counts and blob references read in that same snapshot."""

    pg_dump = _pg_tool("pg_dump")
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            dump = asyncio.create_task(_run(
                [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                 f"--file={target}"], pg_env(url), "pg_dump"))
            try:
                tables = [r[0] for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
                counts = {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in tables}
                revision = ([r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
                            if "alembic_version" in tables else [])
                refs: set[str] = set()
                for table, cols in blob_columns().items():
                    if table in tables:
                        for col in cols:
                            refs.update(r[0] for r in await conn.fetch(
                                f'SELECT DISTINCT "{col}" FROM "{table}" WHERE "{col}" IS NOT NULL'))
            finally:
                await dump  # the snapshot lives as long as this transaction: pg_dump must have started
    finally:
        await conn.close()
    return sorted(revision), counts, {k for k in refs if k and is_key(k)}


async def _pg_facts(url: URL) -> tuple[list[str], dict[str, int], set[str]]:

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        tables = [r[0] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        counts = {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in tables}
        revision = ([r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
                    if "alembic_version" in tables else [])
    finally:
        await conn.close()
    return sorted(revision), counts, set()


async def database_facts(database_url: str) -> tuple[list[str], dict[str, int]]:
    """(alembic revisions, rows per table) of a database now."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if not path.exists():
            return [], {}
        revision, counts, _refs = await asyncio.to_thread(_sqlite_facts, path)
    else:
        revision, counts, _refs = await _pg_facts(url)
    return revision, counts


async def database_is_empty(database_url: str) -> bool:
    """No table at all (a new SQLite file or a new PostgreSQL database)."""
    _revision, counts = await database_facts(database_url)
    return not counts


# ------------------------------------------------------------------------------------ backup

@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]


def archive_path(target: Path) -> Path:
    """An existing directory gets a dated file name in it."""
    if target.is_dir():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        return target / f"eoffice-backup-{stamp}.tar"
    return target


class _HashingReader(io.RawIOBase):
    """A file object over chunks that hashes what passes (tarfile reads members through it)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.hasher = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.f.read(len(buffer))
        self.hasher.update(data)
        self.size += len(data)
        buffer[:len(data)] = data
        return len(data)


async def _spool_blob(store: BlobStore, key: str, into: IO[bytes]) -> tuple[str, int]:
    into.seek(0)
    into.truncate()
    h = hashlib.sha256()
    size = 0
    async for chunk in store.open(key):
        h.update(chunk)
        size += len(chunk)
        into.write(chunk)  # a local temporary file
    into.flush()
    into.seek(0)
    return h.hexdigest(), size


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> tarfile.TarInfo:
    info = tar.gettarinfo(str(path), arcname=name)
    info.mode, info.uid, info.gid, info.uname, info.gname = FILE_MODE, 0, 0, "", ""
    with open(path, "rb") as f:
        tar.addfile(info, f)
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = FILE_MODE
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


async def backup(database_url: str, store: BlobStore, target: Path, *, secret_key: str | None = None,
                 progress: Progress = _no_progress) -> BackupResult:
    """Write an archive of the database and every blob to ``target`` (a .tar file, or a directory to
    put a dated one in); ``secret_key``: include the key material (``--include-keys``)."""

    final = archive_path(target)
    if final.exists():
        raise BackupError(f"Tệp {final} đã có: chọn tên khác (bản sao lưu không ghi đè lên tệp cũ).")
    private_dir(final.parent)
    url = make_url(database_url)
    with tempfile.TemporaryDirectory(prefix="eoffice-backup-") as work:
        dump = Path(work) / "database"
        if url.get_backend_name() == "sqlite":
            db_member = DB_SQLITE
            await asyncio.to_thread(_sqlite_snapshot, _sqlite_path(url), dump)
            revision, counts, refs = await asyncio.to_thread(_sqlite_facts, dump)
        elif url.get_backend_name() == "postgresql":
            db_member = DB_PG
            revision, counts, refs = await _pg_snapshot(url, dump)
        else:
            raise BackupError(f"Không sao lưu được cơ sở dữ liệu loại {url.get_backend_name()}.")
        db_sha = await asyncio.to_thread(_sha256_file, dump)
        keys = [k async for k in store.keys()]  # after the database's instant: every referenced blob is here
        keys.sort()
        fd, partial = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
        os.fchmod(fd, FILE_MODE)
        items: list[dict[str, Any]] = []
        missing: list[str] = []
        try:
            with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                info = await asyncio.to_thread(_add_file, tar, dump, db_member)
                show = progress("Sao lưu tệp", len(keys))
                total = 0
                with tempfile.TemporaryFile(dir=work) as spool:
                    for i, key in enumerate(keys, 1):
                        try:
                            blob = await store.stat(key)
                            sha, size = await _spool_blob(store, key, spool)
                        except NotFound:  # deleted meanwhile (an unattached upload cleaned up)
                            if key in refs:
                                missing.append(key)
                            show(i)
                            continue
                        if sha != key:
                            raise BackupError(f"Tệp lưu trữ {key} trong kho đã bị hỏng (mã băm của nội dung là "
                                              f"{sha}): kiểm tra kho trước khi sao lưu.")
                        member = tarfile.TarInfo(f"blobs/{key}")
                        member.size, member.mode, member.mtime = size, FILE_MODE, info.mtime
                        await asyncio.to_thread(tar.addfile, member, spool)
                        items.append({"key": key, "sha256": sha, "size": size, "content_type": blob.content_type})
                        total += size
                        show(i)
                missing.extend(sorted(refs - set(keys)))
                if missing:
                    raise BackupError(f"{len(missing)} tệp mà cơ sở dữ liệu nhắc tới không có trong kho "
                                      f"(ví dụ {missing[0]}): bản sao lưu sẽ không khôi phục đủ.")
                key_info: dict[str, Any] = {"included": False}
                if secret_key:
                    data = (secret_key + "\n").encode()
                    _add_bytes(tar, KEY_MEMBER, data)
                    key_info = {"included": True, "file": KEY_MEMBER, "sha256": hashlib.sha256(data).hexdigest()}
                try:
                    app_version = version("eoffice")
                except PackageNotFoundError:
                    app_version = ""
                manifest: dict[str, Any] = {
                    "format": FORMAT, "version": VERSION, "eoffice_version": app_version,
                    "created_at": _utc_now(), "dialect": url.get_backend_name(),
                    "alembic_revision": revision,
                    "database": {"file": db_member, "sha256": db_sha, "size": dump.stat().st_size},
                    "counts": counts,
                    "blobs": {"count": len(items), "bytes": total, "referenced": len(refs), "items": items},
                    "keys": key_info,
                }
                _add_bytes(tar, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode())
                out.flush()
                os.fsync(out.fileno())
            os.rename(partial, final)  # no overwrite race: checked above, and the name is ours
            _fsync_dir(final.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
    return BackupResult(final, manifest)


# ------------------------------------------------------------------------------------ reading an archive

TRUNCATED = "Tệp sao lưu {path} bị cắt cụt hoặc hỏng ({why}): dùng một bản sao lưu khác."


@dataclass
class Archive:
    path: Path
    tar: tarfile.TarFile
    manifest: dict[str, Any]
    members: dict[str, tarfile.TarInfo] = field(default_factory=dict)

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[Archive]:
        if not path.is_file():
            raise BackupError(f"Không có tệp sao lưu {path}.")
        try:
            tar = tarfile.open(path, mode="r:")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(TRUNCATED.format(path=path, why=exc)) from exc
        try:
            try:
                members = {m.name: m for m in tar.getmembers()}
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BackupError(TRUNCATED.format(path=path, why=exc)) from exc
            if MANIFEST not in members:
                raise BackupError(TRUNCATED.format(path=path, why="không có manifest.json ở cuối tệp"))
            try:
                manifest = json.loads(cls._read(tar, members[MANIFEST]))
            except (ValueError, tarfile.TarError, OSError, EOFError) as exc:
                raise BackupError(TRUNCATED.format(path=path, why=f"manifest.json: {exc}")) from exc
            if manifest.get("format") != FORMAT:
                raise BackupError(f"{path} không phải bản sao lưu eoffice.")
            if int(manifest.get("version", 0)) > VERSION:
                raise BackupError(f"{path} được tạo bởi phiên bản eoffice mới hơn (định dạng "
                                  f"{manifest.get('version')}): hãy dùng phiên bản đó để khôi phục.")
            yield cls(path, tar, manifest, members)
        finally:
            tar.close()

    @staticmethod
    def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
        f = tar.extractfile(member)
        if f is None:
            raise tarfile.TarError(f"{member.name} is not a file")
        data = f.read()
        if len(data) != member.size:
            raise EOFError(f"{member.name}: {len(data)} of {member.size} bytes")
        return data

    def member(self, name: str) -> IO[bytes]:
        info = self.members.get(name)
        if info is None:
            raise BackupError(f"Bản sao lưu {self.path} thiếu {name}.")
        f = self.tar.extractfile(info)
        if f is None:
            raise BackupError(f"Bản sao lưu {self.path}: {name} không phải một tệp.")
        return f

    def secret_key(self) -> str | None:
        if not self.manifest.get("keys", {}).get("included") or KEY_MEMBER not in self.members:
            return None
        data = self._guard(KEY_MEMBER, lambda: self._read(self.tar, self.members[KEY_MEMBER]))
        if hashlib.sha256(data).hexdigest() != self.manifest["keys"].get("sha256"):
            raise BackupError(f"Khóa trong bản sao lưu {self.path} không khớp mã băm của manifest.")
        return data.decode().strip()

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(TRUNCATED.format(path=self.path, why=f"{what}: {exc}")) from exc

    def extract_verified(self, name: str, sha256: str, size: int | None, into: Path) -> None:
        """Copy a member out, checking its sha256 (and size) against the manifest's."""
        def copy() -> tuple[str, int]:
            src = _HashingReader(self.member(name))
            with open(into, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            return src.hasher.hexdigest(), src.size

        sha, got = self._guard(name, copy)
        if size is not None and got != size:
            raise BackupError(TRUNCATED.format(path=self.path, why=f"{name}: {got} trên {size} byte"))
        if sha != sha256:
            raise BackupError(f"{name} trong bản sao lưu {self.path} đã bị thay đổi: sha256 {sha}, "
                              f"manifest ghi {sha256}.")

    def blob_chunks(self, name: str, sha256: str) -> AsyncIterator[bytes]:
        """The member's bytes; BackupError at the end when they do not hash to ``sha256`` (the store's put
        then fails and keeps nothing)."""
        async def gen() -> AsyncIterator[bytes]:
            f = self.member(name)
            h = hashlib.sha256()
            while True:
                chunk = self._guard(name, lambda: f.read(CHUNK))
                if not chunk:
                    break
                h.update(chunk)
                yield chunk
            if h.hexdigest() != sha256:
                raise BackupError(f"Tệp {name} trong bản sao lưu {self.path} đã bị thay đổi (sha256 "
                                  f"{h.hexdigest()}, manifest ghi {sha256}).")
        return gen()


# ------------------------------------------------------------------------------------ restore

@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    counts: dict[str, int]  # rows per table right after loading, before any migration
    migrated: bool
    blobs: int
    secret_key: str | None  # from the archive, when it holds one


async def blob_store_is_empty(store: BlobStore) -> bool:
    async for _key in store.keys():
        return False
    return True


def _sqlite_load(dump: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    private_dir(target.parent)
    create_private_file(target)
    src = sqlite3.connect(dump)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()


async def pg_clear(url: URL) -> None:

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


async def restore(archive_file: Path, database_url: str, store: BlobStore, *, force: bool = False,
                  migrate_to_head: bool = True, progress: Progress = _no_progress) -> RestoreResult:
    """Load an archive into an empty database and blob store (``force``: replace a non-empty database,
    add to a non-empty store), then migrate it when the backup's schema is older than this code's."""

    url = make_url(database_url)
    with Archive.open(archive_file) as archive:
        manifest = archive.manifest
        dialect = url.get_backend_name()
        if manifest["dialect"] != dialect:
            raise BackupError(f"Bản sao lưu là của {manifest['dialect']}, không khôi phục được vào {dialect}: "
                              f"đặt EOFFICE_DATABASE_URL trỏ tới một cơ sở dữ liệu {manifest['dialect']}.")

        script = ScriptDirectory.from_config(alembic_config(database_url))
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = [r for r in manifest["alembic_revision"] if r not in known]
        if unknown:
            raise BackupError(f"Bản sao lưu ở phiên bản lược đồ {', '.join(unknown)}, mới hơn mã nguồn này: "
                              "hãy cài phiên bản eoffice mới hơn để khôi phục.")
        if not force:
            problems = []
            if not await database_is_empty(database_url):
                problems.append(f"cơ sở dữ liệu {url.render_as_string(hide_password=True)} đã có dữ liệu")
            if not await blob_store_is_empty(store):
                problems.append("kho tệp đã có tệp")
            if problems:
                raise BackupError("Không khôi phục vào nơi đã có dữ liệu: " + "; ".join(problems) + ". Hãy trỏ "
                                  "EOFFICE_DATABASE_URL/EOFFICE_BLOB_URL tới nơi trống, hoặc thêm --force để "
                                  "GHI ĐÈ cơ sở dữ liệu (mọi dữ liệu hiện có sẽ mất).")
        db_info = manifest["database"]
        with tempfile.TemporaryDirectory(prefix="eoffice-restore-") as work:
            dump = Path(work) / "database"
            await asyncio.to_thread(archive.extract_verified, db_info["file"], db_info["sha256"],
                                    db_info.get("size"), dump)
            # the blobs first: a database is never left pointing at files that are not there
            items = manifest["blobs"]["items"]
            show = progress("Khôi phục tệp", len(items))
            for i, item in enumerate(items, 1):
                key = item["key"]
                if key != item["sha256"] or not is_key(key):
                    raise BackupError(f"Manifest của {archive_file} hỏng: tệp {key!r}.")
                if not await store.exists(key):
                    blob = await store.put(archive.blob_chunks(f"blobs/{key}", key), limit=int(item["size"]),
                                           content_type=item.get("content_type") or "application/octet-stream")
                    if blob.key != key:  # cannot happen once the hash was checked; never keep a stray blob
                        await store.delete(blob.key)
                        raise BackupError(f"Tệp {key} khôi phục ra nội dung khác ({blob.key}).")
                show(i)
            if dialect == "sqlite":
                await asyncio.to_thread(_sqlite_load, dump, _sqlite_path(url))
            else:
                await pg_clear(url)
                await _run([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                            "--single-transaction", f"--dbname={url.database}", str(dump)], pg_env(url),
                           "pg_restore")
        _revision, counts = await database_facts(database_url)
        migrated = False
        if migrate_to_head and set(manifest["alembic_revision"]) != set(script.get_heads()):
            await asyncio.to_thread(migrate, database_url)
            migrated = True
        secret = archive.secret_key()
    return RestoreResult(manifest, counts, migrated, len(items), secret)


@dataclass
class CheckReport:
    problems: list[str]
    lines: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def compare_counts(expected: dict[str, int], got: dict[str, int]) -> list[str]:
    problems = []
    for table in sorted(set(expected) | set(got)):
        if expected.get(table) != got.get(table):
            problems.append(f"bảng {table}: manifest ghi {expected.get(table)} dòng, khôi phục ra {got.get(table)}")
    return problems


__all__ = [
    "Archive",
    "BackupError",
    "BackupResult",
    "CheckReport",
    "RestoreResult",
    "archive_path",
    "backup",
    "blob_store_is_empty",
    "compare_counts",
    "database_facts",
    "database_is_empty",
    "pg_clear",
    "restore",
]
