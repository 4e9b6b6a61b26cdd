"""Blobs on the local filesystem: the embedded setup (``file://var/blobs``) and single-server installs.

Layout under the root::

    tmp/upload-XXXX          uploads in progress (same filesystem, so publishing is an atomic rename)
    ab/cd/abcd...<sha256>    the blob, fanned out so no directory gets huge
    ab/cd/abcd...<sha256>.type   its content type, one line of text

An upload is written to ``tmp/``, hashed as it goes, fsynced, and renamed into place with
``os.replace``: a reader sees the whole blob or nothing. The ``.type`` sidecar is written
before the rename, so a published blob always has one (a missing sidecar reads as
application/octet-stream). Keys are validated as 64 lowercase hex characters before any path
is built, which makes path traversal impossible. All file I/O runs in worker threads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

import anyio

from storage.blobs import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    BlobInfo,
    BlobStore,
    clean_content_type,
    is_key,
    not_found,
    spool,
    validate_key,
)
from storage.errors import Unavailable
from storage.private_files import create_private_file, private_dir


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalBlobStore(BlobStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.tmp = self.root / "tmp"

    @classmethod
    def from_url(cls, url: str) -> LocalBlobStore:
        """``file://var/blobs`` is relative to the working directory, ``file:///srv/blobs`` absolute."""
        path = unquote(url.removeprefix("file://").split("?", 1)[0])
        if not path:
            raise ValueError("file:// blob URL needs a path, e.g. file://var/blobs")
        return cls(path)

    def path(self, key: str) -> Path:
        key = validate_key(key)
        return self.root / key[:2] / key[2:4] / key

    def local_path(self, key: str) -> str | None:
        path = self.path(key)
        return os.path.abspath(path) if path.is_file() else None  # the worker shares our cwd, but be plain

    async def put(
        self, chunks: AsyncIterable[bytes], *, limit: int, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> BlobInfo:
        content_type = clean_content_type(content_type)

        def create_temp() -> tuple[int, str]:
            private_dir(self.tmp)  # 0700 directories, 0600 files (mkstemp's), whatever the umask
            return tempfile.mkstemp(prefix="upload-", dir=self.tmp)

        fd, temp_name = await anyio.to_thread.run_sync(create_temp)
        temp = Path(temp_name)
        out = os.fdopen(fd, "wb")
        try:
            key, size = await spool(chunks, out, limit)
            return await anyio.to_thread.run_sync(self._publish, out, temp, key, size, content_type)
        except BaseException:
            # Also on cancellation (client gone): shielded so the temp file is always removed.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._discard, out, temp)
            raise

    def _publish(self, out: BinaryIO, temp: Path, key: str, size: int, content_type: str) -> BlobInfo:
        """Runs in a thread: make the temp file durable, then rename it into place (or drop it)."""
        out.flush()
        os.fsync(out.fileno())
        out.close()
        final = self.path(key)
        if final.exists():  # same content already stored: never overwrite, keep its content type
            temp.unlink(missing_ok=True)
            return BlobInfo(key, final.stat().st_size, self._read_type(final))
        private_dir(final.parent)
        type_temp = temp.with_suffix(".type")
        type_temp.unlink(missing_ok=True)
        create_private_file(type_temp, (content_type + "\n").encode("ascii"))
        os.replace(type_temp, final.with_name(key + ".type"))
        os.replace(temp, final)
        _fsync_dir(final.parent)
        return BlobInfo(key, size, content_type)

    @staticmethod
    def _discard(out: BinaryIO, temp: Path) -> None:
        with contextlib.suppress(OSError):
            out.close()
        temp.unlink(missing_ok=True)
        temp.with_suffix(".type").unlink(missing_ok=True)

    @staticmethod
    def _read_type(final: Path) -> str:
        try:
            return clean_content_type(final.with_name(final.name + ".type").read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError):
            return DEFAULT_CONTENT_TYPE

    async def _open(self, key: str) -> AsyncIterator[bytes]:
        try:
            f = await anyio.open_file(self.path(key), "rb")
        except FileNotFoundError:
            raise not_found(key) from None
        async with f:
            while chunk := await f.read(CHUNK_SIZE):
                yield chunk

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            f = await anyio.open_file(self.path(validate_key(key)), "rb")
        except FileNotFoundError:
            raise not_found(key) from None
        async with f:
            await f.seek(max(0, offset))
            return await f.read(max(0, length))

    async def stat(self, key: str) -> BlobInfo:
        final = self.path(key)

        def stat() -> BlobInfo:
            try:
                size = final.stat().st_size
            except FileNotFoundError:
                raise not_found(key) from None
            return BlobInfo(key, size, self._read_type(final))

        return await anyio.to_thread.run_sync(stat)

    async def delete(self, key: str) -> None:
        final = self.path(key)

        def delete() -> None:
            final.unlink(missing_ok=True)
            final.with_name(key + ".type").unlink(missing_ok=True)

        await anyio.to_thread.run_sync(delete)

    async def keys(self) -> AsyncIterator[str]:
        def listing() -> list[str]:
            found: list[str] = []
            if not self.root.is_dir():
                return found
            for first in os.scandir(self.root):
                if len(first.name) != 2 or not first.is_dir():  # tmp/ and anything else that is no fan-out
                    continue
                for second in os.scandir(first.path):
                    if len(second.name) != 2 or not second.is_dir():
                        continue
                    found.extend(f.name for f in os.scandir(second.path)
                                 if len(f.name) == 64 and is_key(f.name) and f.is_file())
            return found

        for key in await anyio.to_thread.run_sync(listing):
            yield key

    async def check(self) -> None:
        def check() -> None:
            try:
                private_dir(self.tmp)
            except OSError as exc:
                raise Unavailable("Kho lưu trữ tệp không truy cập được.", reason=str(exc)) from exc
            if not os.access(self.tmp, os.W_OK):
                raise Unavailable("Kho lưu trữ tệp không ghi được.", path=str(self.root))

        await anyio.to_thread.run_sync(check)
