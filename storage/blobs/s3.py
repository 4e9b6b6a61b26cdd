"""Blobs in an S3-compatible object store (MinIO in production, SeaweedFS in the tests).

``s3://bucket?endpoint=host:port&access_key=..&secret_key=..&secure=false&region=..``; the keys
may instead come from EOFFICE_S3_ACCESS_KEY / EOFFICE_S3_SECRET_KEY so they stay out of the URL.
``secure`` defaults to true (credentials never cross the network in clear unless asked).

Why the upload is spooled: the object key is the sha256 of the content, known only at the end,
and S3 has no rename. So the stream is hashed and size-checked into a SpooledTemporaryFile
(memory up to 1 MiB, then an unnamed temp file that disappears even if the process dies), and
uploaded under its key only when complete and within the limit. S3 makes an object visible
only once its PUT (or multipart upload) completes, so a failure leaves no half-written object.

Why threads and short timeouts: the ``minio`` client is synchronous, so every call runs in a
worker thread. Its HTTP pool has a short connect timeout and a single retry, so a server that
is down turns into storage.errors.Unavailable within seconds instead of minio's default minutes
of retries. Metadata calls (stat, delete, health) use a second pool with a short read timeout;
transfers keep a longer one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import timedelta
from typing import BinaryIO, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from minio.helpers import check_bucket_name

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
from storage.errors import NotFound, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

SPOOL_MEMORY = 1024 * 1024  # bigger uploads spool to an unnamed temp file
DOWN_MESSAGE = "Kho lưu trữ tệp không phản hồi, vui lòng thử lại sau."
REFUSED_MESSAGE = "Kho lưu trữ tệp từ chối yêu cầu, vui lòng báo quản trị hệ thống."
MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"}
TRUE = {"1", "true", "yes", "on"}


def _pool(connect: float, read: float) -> urllib3.PoolManager:
    retry = urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])
    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=connect, read=read), retries=retry, maxsize=16)


class S3BlobStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        endpoint: str = "s3.amazonaws.com",
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        secure: bool = True,
        region: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 60.0,
        meta_timeout: float = 5.0,
    ) -> None:
        check_bucket_name(bucket, strict=True)  # lowercase, DNS-safe: valid on AWS, MinIO and SeaweedFS
        self.bucket = bucket
        self.endpoint = endpoint
        self.secure = secure
        self._http = _pool(connect_timeout, read_timeout)
        self._meta_http = _pool(connect_timeout, meta_timeout)
        creds = {"access_key": access_key, "secret_key": secret_key, "secure": secure, "region": region}
        self._client = Minio(endpoint, http_client=self._http, **creds)  # type: ignore[arg-type]
        self._meta = Minio(endpoint, http_client=self._meta_http, **creds)  # type: ignore[arg-type]
        self._bucket_ready = False

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        parts = urlsplit(url)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = params.get("endpoint", "s3.amazonaws.com")
        secure = params.get("secure", "true").lower() in TRUE
        if "://" in endpoint:  # tolerate endpoint=http://host:port
            scheme, endpoint = endpoint.split("://", 1)
            secure = scheme == "https"
        return cls(
            unquote(parts.netloc),
            endpoint.rstrip("/"),
            params.get("access_key") or os.environ.get("EOFFICE_S3_ACCESS_KEY") or None,
            params.get("secret_key") or os.environ.get("EOFFICE_S3_SECRET_KEY") or None,
            secure=secure,
            region=params.get("region") or None,
        )

    async def _call(self, fn: Callable[..., T], *args: object, key: str | None = None, **kwargs: object) -> T:
        """Run a minio call in a thread; map its failures onto NotFound / Unavailable."""
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        except S3Error as exc:
            if key is not None and exc.code in MISSING_CODES:
                raise not_found(key) from None
            log.warning("S3 %s refused %s: %s %s", self.endpoint, getattr(fn, "__name__", fn), exc.code, exc.message)
            raise Unavailable(REFUSED_MESSAGE, reason=exc.code or "") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("S3 %s unreachable in %s: %s", self.endpoint, getattr(fn, "__name__", fn), exc)
            raise Unavailable(DOWN_MESSAGE, reason=type(exc).__name__) from exc

    async def _ensure_bucket(self) -> None:
        """Create the bucket on first use."""
        if not self._bucket_ready:
            await self._call(self._make_bucket)
            self._bucket_ready = True

    def _make_bucket(self) -> None:
        if self._meta.bucket_exists(self.bucket):
            return
        try:
            self._meta.make_bucket(self.bucket)
        except S3Error as exc:  # created meanwhile by another worker
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def put(
        self, chunks: AsyncIterable[bytes], *, limit: int, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> BlobInfo:
        content_type = clean_content_type(content_type)
        await self._ensure_bucket()  # a server that is down fails here, before the upload is read
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spooled:
            key, size = await spool(chunks, cast(BinaryIO, spooled), limit)
            with contextlib.suppress(NotFound):
                return await self.stat(key)  # already stored: never overwritten
            await self._call(self._upload, spooled, key, size, content_type)
            return BlobInfo(key, size, content_type)

    def _upload(self, spooled: BinaryIO, key: str, size: int, content_type: str) -> None:
        """One PUT up to 5 MiB, else a multipart upload of 5 MiB parts, one part in memory at a time.

        minio's default of 3 parallel part uploads reads parts ahead without bound: a 100 MB
        upload would sit whole in memory. Sequential parts keep it at about two parts.
        """
        spooled.seek(0)
        self._client.put_object(
            self.bucket, key, spooled, length=size, content_type=content_type, num_parallel_uploads=1
        )

    async def _open(self, key: str) -> AsyncIterator[bytes]:
        response = await self._call(self._client.get_object, self.bucket, key, key=key)
        try:
            while chunk := await self._call(response.read, CHUNK_SIZE):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def read_range(self, key: str, offset: int, length: int) -> bytes:
        validate_key(key)
        if length <= 0:
            return b""
        response = await self._call(self._client.get_object, self.bucket, key, key=key, offset=max(0, offset),
                                    length=length)
        try:
            return await self._call(response.read)
        finally:
            response.close()
            response.release_conn()

    async def stat(self, key: str) -> BlobInfo:
        validate_key(key)
        obj = await self._call(self._meta.stat_object, self.bucket, key, key=key)
        return BlobInfo(key, int(obj.size or 0), clean_content_type(obj.content_type))

    async def delete(self, key: str) -> None:
        validate_key(key)
        with contextlib.suppress(NotFound):  # no bucket, no object: nothing to delete
            await self._call(self._meta.remove_object, self.bucket, key, key=key)

    async def presign(self, key: str, expires: timedelta) -> str | None:
        """A GET URL signed for ``expires`` (at most 7 days); NotFound if the blob is missing."""
        await self.stat(key)
        return await self._call(self._meta.presigned_get_object, self.bucket, key, expires=expires)

    async def keys(self) -> AsyncIterator[str]:
        def listing() -> list[str]:
            if not self._meta.bucket_exists(self.bucket):
                return []
            names = (str(o.object_name) for o in self._client.list_objects(self.bucket, recursive=True))
            return [n for n in names if is_key(n)]

        for key in await self._call(listing):
            yield key

    async def check(self) -> None:
        self._bucket_ready = False  # a health check really asks the server
        await self._ensure_bucket()

    async def close(self) -> None:
        self._http.clear()
        self._meta_http.clear()
