"""A real nginx (Debian's package) running the recipe ``docker/nginx/eoffice.conf`` unprivileged on free loopback
ports, with TLS (a self-signed certificate made here), in front of ``eoffice serve`` processes. The recipe is used
as shipped: only the lines marked «ADAPT» that name ports and certificate paths are replaced, and each replacement
must match exactly once, so a change to the recipe that the test no longer covers fails loudly."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import free_port, require

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "docker" / "nginx" / "eoffice.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def require_nginx() -> str:
    require("nginx", NGINX is not None, "apt-get install nginx (make test runs scripts/ensure-nginx.sh)")
    assert NGINX is not None
    return NGINX


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpdt.thu-nghiem.gov.vn")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    crt, pem = directory / "fullchain.pem", directory / "privkey.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pem.chmod(0o600)
    return crt, pem


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    out, n = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert n == 1, f"the recipe no longer has exactly one line matching {pattern!r} ({n})"
    return out


def render(directory: Path, upstreams: list[int], https_port: int, http_port: int, cert: Path, key: Path) -> Path:
    """The recipe with this run's ports, certificate and log paths, inside a minimal main nginx.conf."""
    text = RECIPE.read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:800\d[^;]*;", text, flags=re.MULTILINE)
    assert len(servers) >= 2, "the recipe's upstream should list two or more processes"
    text = _replace_once(text, r"^(\s*server )127\.0\.0\.1:8001( [^;]*;)", rf"\g<1>127.0.0.1:{upstreams[0]}\g<2>")
    text = _replace_once(text, r"^(\s*server )127\.0\.0\.1:8002( [^;]*;)", rf"\g<1>127.0.0.1:{upstreams[1]}\g<2>")
    text = _replace_once(text, r"^(\s*listen )80;", rf"\g<1>127.0.0.1:{http_port};")
    text = _replace_once(text, r"^(\s*listen )443 ssl", rf"\g<1>127.0.0.1:{https_port} ssl")
    text = _replace_once(text, r"^(\s*ssl_certificate\s+)\S+;", rf"\g<1>{cert};")
    text = _replace_once(text, r"^(\s*ssl_certificate_key\s+)\S+;", rf"\g<1>{key};")
    text = _replace_once(text, r"^(\s*access_log )/var/log/nginx/eoffice\.access\.log", rf"\g<1>{directory}/access.log")
    (directory / "eoffice.conf").write_text(text)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / name).mkdir(exist_ok=True)
    main = directory / "nginx.conf"
    # as root (CI), the workers would switch to «nobody», who cannot enter pytest's private temp directories
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main.write_text(f"""{user}worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/eoffice.conf;
}}
""")
    return main


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"wss://127.0.0.1:{self.port}/ws"

    def access_log(self) -> str:
        return (self.directory / "access.log").read_text(errors="replace")

    def error_log(self) -> str:
        return (self.directory / "error.log").read_text(errors="replace")


@functools.cache
def client_tls() -> ssl.SSLContext:
    """One context for every test client (making one loads the system's CA bundle: ~0.1 s of the event loop)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own self-signed certificate
    return context


@contextlib.contextmanager
def running_nginx(directory: Path, upstreams: list[int]) -> Iterator[Nginx]:
    binary = require_nginx()
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(directory)
    https_port, http_port = free_port(), free_port()
    main = render(directory, upstreams, https_port, http_port, cert, key)
    pid = directory / "nginx.pid"
    error_log = directory / "error.log"
    directives = f"daemon off; master_process on; pid {pid}; error_log {error_log} info;"
    check = subprocess.run(
        [binary, "-t", "-p", str(directory), "-c", str(main), "-g", directives], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    with (directory / "nginx.out").open("wb") as out:
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(main), "-g", directives],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    nginx = Nginx(process, https_port, directory)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (directory / "nginx.out").read_text() + nginx.error_log()
            try:
                httpx.get(f"{nginx.base}/livez", verify=False, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.05)
        yield nginx
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: finish and exit
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@dataclass
class Server:
    """One ``eoffice serve`` process on a fixed port (a restart reuses the port, as an operator's unit would)."""

    port: int
    env: dict[str, str]
    log: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "web.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, within: float = 90) -> None:
        deadline = time.monotonic() + within
        while True:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-4000:]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server :{self.port} not ready\n{self.log.read_text()[-4000:]}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def server_env(database_url: str, blob_url: str, broker_url: str, secret: str, var: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EOFFICE_DATABASE_URL": database_url,
        "EOFFICE_BLOB_URL": blob_url,
        "EOFFICE_BROKER_URL": broker_url,
        "EOFFICE_SECRET_KEY": secret,
        "EOFFICE_VAR_DIR": str(var),
        "EOFFICE_DIGEST_HOUR": "off",
        "EOFFICE_TRUSTED_PROXIES": "127.0.0.1",
        "EOFFICE_PRERENDER_PAGES": "0",
        "PYTHONPATH": str(ROOT),
    }
