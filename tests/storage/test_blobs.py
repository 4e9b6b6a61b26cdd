"""The blob store contract, run on the local filesystem and on a real S3 server (SeaweedFS).

Each S3 test gets a bucket of its own, so "nothing was stored" can be checked by listing it.
tempfile's directory is pointed at the test's own, so the S3 store's spool files are visible
to the "nothing left behind" checks too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from storage.blobs import CHUNK_SIZE, DEFAULT_CONTENT_TYPE, BlobInfo, BlobStore, open_blob_store, too_large
from storage.blobs.local import LocalBlobStore
from storage.blobs.s3 import S3BlobStore
from storage.errors import Invalid, NotFound, TooLarge, Unavailable
from tests.conftest import free_port
from tests.s3server import bucket_url, s3_client

MiB = 1024 * 1024
VIETNAMESE = "Ủy ban nhân dân huyện Đông Triều — Công văn về việc triển khai chính quyền điện tử. "


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def generated(total: int, size: int, seed: bytes = b"") -> AsyncIterator[bytes]:
    """``total`` bytes in ``size`` chunks, made on the fly (never whole in memory)."""
    sent = 0
    n = 0
    while sent < total:
        block = hashlib.sha256(seed + n.to_bytes(8, "big")).digest() * (size // 32 + 1)
        chunk = block[: min(size, total - sent)]
        sent += len(chunk)
        n += 1
        yield chunk


async def stored_keys(store: BlobStore) -> list[str]:
    """Blob keys actually in the store (local: files outside tmp/, without the .type sidecars)."""
    if isinstance(store, LocalBlobStore):
        if not store.root.exists():
            return []
        files = [p for p in store.root.rglob("*") if p.is_file() and store.tmp not in p.parents]
        assert all(len(p.name) == 64 or p.name.endswith(".type") for p in files), files
        return sorted(p.name for p in files if len(p.name) == 64)
    assert isinstance(store, S3BlobStore)
    client = s3_client(f"s3://{store.bucket}?endpoint={store.endpoint}&secure=false")

    def listing() -> list[str]:
        if not client.bucket_exists(store.bucket):
            return []
        return sorted(str(o.object_name) for o in client.list_objects(store.bucket, recursive=True))

    return await anyio.to_thread.run_sync(listing)


def temp_files(store: BlobStore, spool_dir: Path) -> list[Path]:
    """Upload temp files: root/tmp for the local store, the spool directory for S3."""
    where = store.tmp if isinstance(store, LocalBlobStore) else spool_dir
    return list(where.iterdir()) if where.exists() else []


def _drop_bucket(url: str, bucket: str) -> None:
    client = s3_client(url)
    if client.bucket_exists(bucket):
        for obj in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, str(obj.object_name))
        client.remove_bucket(bucket)


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture(params=["local", "s3"])
async def blob_store(request: pytest.FixtureRequest, tmp_path: Path, spool_dir: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        store = open_blob_store(f"file://{tmp_path}/blobs")
        yield store
        await store.close()
        return
    url = bucket_url(request.getfixturevalue("s3_url"), f"t-{uuid.uuid4().hex[:20]}")
    store = open_blob_store(url)
    yield store
    await store.close()
    assert isinstance(store, S3BlobStore)
    await anyio.to_thread.run_sync(_drop_bucket, url, store.bucket)


async def test_round_trip_with_vietnamese_content(blob_store: BlobStore) -> None:
    content = (VIETNAMESE * 3000).encode()  # ~300 KB: several chunks
    info = await blob_store.put_bytes(content, content_type="text/plain; charset=utf-8")
    assert info == BlobInfo(hashlib.sha256(content).hexdigest(), len(content), "text/plain; charset=utf-8")
    assert await blob_store.read(info.key) == content
    assert await blob_store.stat(info.key) == info
    chunks = [c async for c in blob_store.open(info.key)]
    assert b"".join(chunks) == content
    assert max(map(len, chunks)) <= CHUNK_SIZE and len(chunks) >= len(content) // CHUNK_SIZE
    assert (await blob_store.read(info.key)).decode().startswith("Ủy ban nhân dân huyện Đông Triều")


async def test_same_content_same_key_stored_once(blob_store: BlobStore) -> None:
    content = "Biên bản họp Hội đồng nhân dân tỉnh Quảng Ninh".encode()
    first = await blob_store.put(chunked(content, 7), limit=1000, content_type="text/plain")
    again = await blob_store.put_bytes(content, content_type="application/pdf")
    assert again == first  # never overwritten: the first content type stays
    together = await asyncio.gather(*(blob_store.put(chunked(content, 5), limit=1000) for _ in range(3)))
    assert set(together) == {first}
    other = await blob_store.put_bytes(content + b".")
    assert other.key != first.key
    assert await stored_keys(blob_store) == sorted([first.key, other.key])


async def test_multi_megabyte_upload_is_streamed(blob_store: BlobStore) -> None:
    total = 24 * MiB + 123  # S3: a multipart upload
    expected = hashlib.sha256()
    async for chunk in generated(total, 1000, b"a"):
        expected.update(chunk)

    tracemalloc.start()
    try:
        info = await blob_store.put(generated(total, 1000, b"a"), limit=100 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.key == expected.hexdigest() and info.size == total
    assert peak < 16 * MiB, f"upload held {peak / MiB:.1f} MiB in memory"

    got = hashlib.sha256()
    size = 0
    async for chunk in blob_store.open(info.key):
        assert len(chunk) <= CHUNK_SIZE
        got.update(chunk)
        size += len(chunk)
    assert (got.hexdigest(), size) == (info.key, total)
    with pytest.raises(TooLarge):
        await blob_store.read(info.key, limit=MiB)


async def test_over_limit_raises_too_large_and_stores_nothing(blob_store: BlobStore, spool_dir: Path) -> None:
    limit = 2 * MiB + 10
    consumed = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal consumed
        async for chunk in generated(8 * MiB, 64 * 1024, b"b"):
            consumed += len(chunk)
            yield chunk

    with pytest.raises(TooLarge) as caught:
        await blob_store.put(stream(), limit=limit, content_type="application/pdf")
    assert caught.value.message == "Tệp vượt quá giới hạn 2 MB." and caught.value.status == 413
    assert consumed <= limit + 64 * 1024  # cut off as soon as it passed the limit
    assert await stored_keys(blob_store) == []
    assert temp_files(blob_store, spool_dir) == []

    with pytest.raises(TooLarge, match="giới hạn 10 byte"):
        await blob_store.put(chunked(b"x" * 11, 3), limit=10)
    exact = await blob_store.put(chunked(b"y" * 10, 3), limit=10)  # exactly at the limit is fine
    assert await stored_keys(blob_store) == [exact.key]
    assert too_large(100 * MiB).message == "Tệp vượt quá giới hạn 100 MB."
    assert too_large(1536 * 1024).message == "Tệp vượt quá giới hạn 1,5 MB."


async def test_broken_stream_leaves_nothing(blob_store: BlobStore, spool_dir: Path) -> None:
    async def cut_off() -> AsyncIterator[bytes]:
        async for chunk in generated(3 * MiB, 64 * 1024, b"c"):
            yield chunk
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await blob_store.put(cut_off(), limit=100 * MiB)
    assert await stored_keys(blob_store) == []
    assert temp_files(blob_store, spool_dir) == []


async def test_stat_exists_delete_and_not_found(blob_store: BlobStore) -> None:
    info = await blob_store.put_bytes("Tờ trình số 15/TTr-UBND".encode())
    assert info.content_type == DEFAULT_CONTENT_TYPE
    assert await blob_store.exists(info.key)
    await blob_store.delete(info.key)
    assert not await blob_store.exists(info.key)
    with pytest.raises(NotFound) as caught:
        await blob_store.stat(info.key)
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        await blob_store.read(info.key)
    with pytest.raises(NotFound):
        async for _ in blob_store.open(info.key):
            pass
    await blob_store.delete(info.key)  # deleting again is fine
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not await blob_store.exists(missing)
    with pytest.raises(NotFound):
        await blob_store.stat(missing)
    assert await stored_keys(blob_store) == []


BAD_KEYS = [
    "",
    "../../etc/passwd",
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "../" + "a" * 61,
    "a" * 32 + "/" + "a" * 31,
    "/" + "a" * 63,
    "a" * 63 + "\n",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_are_rejected(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(Invalid):
        blob_store.open(key)  # at once, before any I/O
    for call in (blob_store.stat, blob_store.exists, blob_store.delete, blob_store.read):
        with pytest.raises(Invalid):
            await call(key)
    with pytest.raises(Invalid):
        await blob_store.presign(key, timedelta(minutes=5))


async def test_content_type_is_cleaned(blob_store: BlobStore) -> None:
    info = await blob_store.put_bytes(b"<p>x</p>", content_type="text/html\r\nX-Injected: 1")
    assert info.content_type == DEFAULT_CONTENT_TYPE
    assert (await blob_store.stat(info.key)).content_type == DEFAULT_CONTENT_TYPE


async def test_presign(blob_store: BlobStore) -> None:
    content = ("Giấy mời họp — " * 5000).encode()
    info = await blob_store.put_bytes(content, content_type="text/plain; charset=utf-8")
    url = await blob_store.presign(info.key, timedelta(minutes=5))
    if isinstance(blob_store, LocalBlobStore):
        assert url is None  # the app serves local blobs itself
        return
    assert url and info.key in url
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200 and response.content == content
    with pytest.raises(NotFound):
        await blob_store.presign(hashlib.sha256(b"none").hexdigest(), timedelta(minutes=5))


async def test_local_check_fails_when_root_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    store = open_blob_store(f"file://{tmp_path}/not-a-dir/blobs")
    with pytest.raises(Unavailable):
        await store.check()


async def test_s3_down_is_unavailable_quickly(spool_dir: Path) -> None:
    port = free_port()  # nothing listens there
    store = open_blob_store(f"s3://eoffice-down?endpoint=127.0.0.1:{port}&access_key=a&secret_key=b&secure=false")
    key = hashlib.sha256(b"x").hexdigest()
    read: list[bytes] = []

    async def upload() -> AsyncIterator[bytes]:
        async for chunk in generated(2 * MiB, 64 * 1024):
            read.append(chunk)
            yield chunk

    calls = {
        "put": lambda: store.put(upload(), limit=10 * MiB),
        "put_bytes": lambda: store.put_bytes("Quyết định".encode()),
        "stat": lambda: store.stat(key),
        "exists": lambda: store.exists(key),
        "read": lambda: store.read(key),
        "delete": lambda: store.delete(key),
        "presign": lambda: store.presign(key, timedelta(minutes=1)),
        "check": store.check,
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            await call()
        assert time.monotonic() - started < 5, name
        assert caught.value.message == "Kho lưu trữ tệp không phản hồi, vui lòng thử lại sau."
        assert caught.value.status == 503
    assert read == []  # refused before the upload was read: the client is not made to send 100 MB for nothing
    assert temp_files(store, spool_dir) == []
    await store.close()


def test_open_blob_store_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    local = open_blob_store("file://var/blobs")
    assert isinstance(local, LocalBlobStore) and local.root == Path.cwd() / "var" / "blobs"
    absolute = open_blob_store("file:///srv/eoffice/t%C3%A0i-li%E1%BB%87u")
    assert isinstance(absolute, LocalBlobStore) and absolute.root == Path("/srv/eoffice/tài-liệu")

    monkeypatch.setenv("EOFFICE_S3_ACCESS_KEY", "from-env")
    monkeypatch.setenv("EOFFICE_S3_SECRET_KEY", "secret-from-env")
    s3 = open_blob_store("s3://eoffice-files?endpoint=minio:9000&secure=false&region=us-east-1")
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.endpoint, s3.secure) == ("eoffice-files", "minio:9000", False)
    creds = s3._client._provider.retrieve()  # type: ignore[union-attr]
    assert (creds.access_key, creds.secret_key) == ("from-env", "secret-from-env")
    in_url = open_blob_store("s3://eoffice-files?endpoint=http://minio:9000&access_key=k&secret_key=s")
    assert isinstance(in_url, S3BlobStore) and not in_url.secure
    assert in_url._client._provider.retrieve().access_key == "k"  # type: ignore[union-attr]
    assert open_blob_store("s3://eoffice-files?endpoint=minio:9000").secure  # https unless told otherwise

    for bad in ("s3://ab?endpoint=x:1", "s3://Bad_Bucket?endpoint=x:1", "ftp://x/y", "file://"):
        with pytest.raises(ValueError):
            open_blob_store(bad)


async def test_local_layout_and_no_traversal(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/blobs")
    info = await store.put_bytes(b"%PDF-1.7 " + os.urandom(1000), content_type="application/pdf")
    blob = tmp_path / "blobs" / info.key[:2] / info.key[2:4] / info.key
    assert blob.is_file() and blob.with_name(info.key + ".type").read_text().strip() == "application/pdf"
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    blob.with_name(info.key + ".type").unlink()  # a missing sidecar reads as the generic type
    assert (await store.stat(info.key)).content_type == DEFAULT_CONTENT_TYPE


async def test_local_path_is_the_file_for_a_local_store_and_none_for_s3(blob_store: BlobStore) -> None:
    """A PDF worker reads a local blob's file itself; an S3 blob has no file here."""
    data = "Quyết định về việc phê duyệt kế hoạch chuyển đổi số".encode()
    info = await blob_store.put_bytes(data, content_type="text/plain")
    path = blob_store.local_path(info.key)
    if isinstance(blob_store, S3BlobStore):
        assert path is None
    else:
        assert path is not None and os.path.isabs(path) and await anyio.Path(path).read_bytes() == data
    await blob_store.delete(info.key)
    assert blob_store.local_path(info.key) is None  # no blob, no file
    with pytest.raises(Invalid):
        blob_store.local_path("../../etc/passwd")


async def test_keys_lists_every_blob_and_nothing_else(blob_store: BlobStore, spool_dir: Path) -> None:
    """What a backup copies (``storage.backup``): every stored blob once; no temp files or type sidecars."""
    assert [k async for k in blob_store.keys()] == []  # a new store (an S3 bucket not even created yet)
    first = await blob_store.put_bytes("Quyết định số 15/QĐ-UBND".encode(), content_type="application/pdf")
    second = await blob_store.put_bytes("Tờ trình số 8/TTr-STTTT".encode())
    await blob_store.put_bytes("Quyết định số 15/QĐ-UBND".encode())  # the same content: still one blob
    assert sorted([k async for k in blob_store.keys()]) == sorted([first.key, second.key]) == await stored_keys(
        blob_store)
