"""Content-addressed blob store: one interface, a local-filesystem and an S3 implementation.

Why content-addressed: the database only ever stores a sha256 key, a blob is never overwritten
(putting the same bytes again is a no-op), so a key recorded in an audit entry or a signed
document always points at exactly the bytes that were signed.

Why the key is known only at the end: uploads are streamed in chunks and hashed as they
arrive, never held whole in memory. Each implementation first writes the stream somewhere
private (a temp file), checking the size limit as it goes, and publishes it under its key
only once complete, so a failed or oversized upload leaves nothing behind.

``open_blob_store(url)`` picks the implementation from the URL (``EOFFICE_BLOB_URL``):

- ``file://var/blobs`` (relative to the working directory) or ``file:///srv/eoffice/blobs``
- ``s3://bucket?endpoint=host:port&access_key=..&secret_key=..&secure=false&region=..``
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

import anyio

from storage.errors import Invalid, NotFound, TooLarge

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_CONTENT_TYPE",
    "DEFAULT_READ_LIMIT",
    "BlobInfo",
    "BlobStore",
    "is_key",
    "open_blob_store",
    "too_large",
    "validate_key",
]

CHUNK_SIZE = 64 * 1024  # what open() yields: small enough for many concurrent downloads
DEFAULT_READ_LIMIT = 64 * 1024 * 1024  # read() is for small blobs; bigger ones are streamed with open()
DEFAULT_CONTENT_TYPE = "application/octet-stream"
WRITE_BATCH = 1024 * 1024  # incoming chunks are gathered up to this size per thread hop (bounded memory)

_KEY = re.compile(r"[0-9a-f]{64}")
# type/subtype with optional parameters, printable ASCII only: it ends up in an HTTP header and a 120-char column.
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+(\s*;[\x20-\x7e]*)?")


@dataclass(frozen=True)
class BlobInfo:
    key: str  # sha256 hex of the content
    size: int
    content_type: str = DEFAULT_CONTENT_TYPE


def validate_key(key: str) -> str:
    """Only 64 lowercase hex characters: a key can never name a path or another bucket's object."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise Invalid("Mã tệp không hợp lệ.", key=str(key)[:80])
    return key


def is_key(name: str) -> bool:
    """A blob key's spelling (64 lowercase hex characters)."""
    return bool(_KEY.fullmatch(name))


def clean_content_type(content_type: str | None) -> str:
    """The given type if it is a plausible MIME type, else the generic one (never a header injection)."""
    value = (content_type or "").strip()
    if len(value) <= 120 and _CONTENT_TYPE.fullmatch(value):
        return value
    return DEFAULT_CONTENT_TYPE


def _human_size(n: int) -> str:
    """100 MB, 1,5 MB, 512 KB: Vietnamese decimal comma, binary units as the settings use."""
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0").replace(".", ",") + f" {unit}"
    return f"{n} byte"


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"Tệp vượt quá giới hạn {_human_size(limit)}.", limit=limit)


def not_found(key: str) -> NotFound:
    return NotFound("Không tìm thấy tệp.", key=key)


async def spool(chunks: AsyncIterable[bytes], out: BinaryIO, limit: int) -> tuple[str, int]:
    """Copy a stream into ``out`` while hashing it; raise TooLarge as soon as it passes ``limit``.

    Chunks are gathered into batches of about 1 MiB, and each batch is hashed and written in a
    worker thread: disk writes never block the event loop, and a client sending tiny chunks does
    not cost a thread hop per chunk. Returns (sha256 hex, size); the caller cleans ``out`` up.
    """
    hasher = hashlib.sha256()
    size = 0
    batch = bytearray()

    def write(data: bytes) -> None:
        hasher.update(data)
        out.write(data)

    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        batch += chunk
        if len(batch) >= WRITE_BATCH:
            data, batch = bytes(batch), bytearray()
            await anyio.to_thread.run_sync(write, data)
    if batch:
        await anyio.to_thread.run_sync(write, bytes(batch))
    return hasher.hexdigest(), size


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class BlobStore(abc.ABC):
    """What the services and the web layer use; see the module docstring for the guarantees."""

    @abc.abstractmethod
    async def put(
        self, chunks: AsyncIterable[bytes], *, limit: int, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> BlobInfo:
        """Store a stream; TooLarge (and nothing stored) once it passes ``limit`` bytes.

        Existing content is not written again: the stored BlobInfo is returned, with the
        content type of the first put.
        """

    async def put_bytes(self, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE) -> BlobInfo:
        """Convenience for small generated content (page renders, exports)."""
        return await self.put(_one(data), limit=len(data), content_type=content_type)

    def open(self, key: str) -> AsyncIterator[bytes]:
        """Stream a blob in CHUNK_SIZE chunks.

        An invalid key raises Invalid at once; a missing blob raises NotFound on the first
        iteration, so call ``stat`` first when a 404 must be decided before a response starts.
        """
        return self._open(validate_key(key))

    @abc.abstractmethod
    def _open(self, key: str) -> AsyncIterator[bytes]: ...

    async def read(self, key: str, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        """The whole blob in memory, for small ones; TooLarge past ``limit``."""
        data = bytearray()
        async for chunk in self.open(key):
            data += chunk
            if len(data) > limit:
                raise too_large(limit)
        return bytes(data)

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end): the head or tail of a blob, to tell its
        type from its bytes. This default streams up to the range; the stores override it with a seek."""
        data = bytearray()
        pos = 0
        async for chunk in self.open(key):
            if pos + len(chunk) > offset:
                data += chunk[max(0, offset - pos):]
            pos += len(chunk)
            if len(data) >= length:
                break
        return bytes(data[:length])

    @abc.abstractmethod
    async def stat(self, key: str) -> BlobInfo:
        """Size and content type; NotFound if missing."""

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except NotFound:
            return False
        return True

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove a blob; deleting a missing blob is not an error (deletes may be retried)."""

    async def presign(self, key: str, expires: timedelta) -> str | None:
        """A time-limited URL the browser can fetch directly, or None when the app must serve it."""
        validate_key(key)
        return None

    def local_path(self, key: str) -> str | None:
        """The absolute path of the blob's file when it is a file on this machine that another
        process may read (a PDF worker reads it directly instead of receiving its bytes), else None
        (an S3 store, or no such blob). Blocking but cheap: one stat."""
        validate_key(key)
        return None

    def keys(self) -> AsyncIterator[str]:
        """Every blob's key, in no particular order (a backup copies them all: ``storage.backup``). Blobs
        being uploaded are not listed (they have no key yet); one put while listing may or may not be."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its blobs")

    @abc.abstractmethod
    async def check(self) -> None:
        """Health check: raise storage.errors.Unavailable when the store cannot be used."""

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""


def open_blob_store(url: str) -> BlobStore:
    """The store for a ``file://`` or ``s3://`` URL (see the module docstring)."""
    if url.startswith("file://"):
        from storage.blobs.local import LocalBlobStore  # it imports this module (the interface)

        return LocalBlobStore.from_url(url)
    if url.startswith("s3://"):
        from storage.blobs.s3 import S3BlobStore  # the minio client, only for an s3:// store

        return S3BlobStore.from_url(url)
    raise ValueError(f"unsupported blob store URL (use file:// or s3://): {url.split('?')[0]}")
