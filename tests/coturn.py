"""A real coturn (``turnserver``) for tests: started on a random port of a given address with a shared secret
(``use-auth-secret``, as docker/turnserver.conf), a TLS port with a self-signed certificate for that address, and
relay ports from a random range; stopped afterwards. Install: ``apt-get install coturn`` (``make test`` does, as
root, through scripts/ensure-netbed.sh). Debian's package starts no service of its own."""

from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port, tcp_open


def missing() -> str | None:
    return None if shutil.which("turnserver") else "turnserver not installed (apt-get install coturn)"


@dataclass(frozen=True)
class Coturn:
    host: str
    port: int  # TURN over UDP and TCP
    tls_port: int  # TURN over TLS (turns:)
    secret: str
    cert: Path  # the self-signed certificate clients must trust for turns:
    log: Path

    def urls(self, *, tls: bool = True) -> str:
        """The value of EOFFICE_TURN_URLS for this server."""
        urls = [f"turn:{self.host}:{self.port}?transport=udp", f"turn:{self.host}:{self.port}?transport=tcp"]
        if tls:
            urls.append(f"turns:{self.host}:{self.tls_port}?transport=tcp")
        return ",".join(urls)


@contextlib.contextmanager
def running(host: str, secret: str, tmp: Path) -> Iterator[Coturn]:
    cert, key = tmp / "turn.pem", tmp / "turn.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port, tls_port = free_port(), free_port()
    low = random.randrange(40000, 60000, 200)
    log_path = tmp / "turnserver.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            ["turnserver", "-n", f"--listening-ip={host}", f"--relay-ip={host}", f"--listening-port={port}",
             f"--tls-listening-port={tls_port}", f"--min-port={low}", f"--max-port={low + 199}", "--use-auth-secret",
             f"--static-auth-secret={secret}", "--realm=eoffice.test", "--fingerprint", "--no-dtls", "--no-cli",
             f"--cert={cert}", f"--pkey={key}", "--no-software-attribute", "--log-file=stdout", "--simple-log",
             "--no-multicast-peers", f"--pidfile={tmp / 'turnserver.pid'}", f"--db={tmp / 'turndb'}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not (tcp_open(host, port) and tcp_open(host, tls_port)):
                if proc.poll() is not None:
                    raise RuntimeError(f"turnserver exited: {log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("turnserver did not start listening within 30 s")
                time.sleep(0.2)
            yield Coturn(host, port, tls_port, secret, cert, log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
