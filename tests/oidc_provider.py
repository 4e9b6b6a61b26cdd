"""A real OpenID Provider for the tests: Debian's Glewlwyd (``scripts/ensure-oidc-provider.sh`` installs it).

``start_glewlwyd(tmp)`` runs ``glewlwyd`` unprivileged on a free loopback port with its own SQLite database
(made from the package's own schema), an OpenID Connect plugin instance signing ID tokens with a fresh RSA key
(RS256, PKCE allowed, end_session on), and returns a ``Provider`` that adds users and clients through
Glewlwyd's administration API (the built-in ``admin``/``password`` account of a new database). Glewlwyd's own
login page (a web application under ``/login.html``) is what the browser sees.

Like tests/s3server.py: its own process group, SIGKILL'd with the test process (PR_SET_PDEATHSIG) and at exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import free_port, require

SCHEMA = Path("/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz")
WEBAPP = Path("/usr/share/glewlwyd/webapp")
WEBAPP_CONFIG = Path("/usr/share/glewlwyd/templates/config.json")
MODULES = Path("/usr/lib/glewlwyd")
PLUGIN = "oidc"
ADMIN = ("admin", "password")  # the package schema's administrator
START_TIMEOUT = 30.0
SESSION_COOKIE = "GLEWLWYD2_SESSION_ID"


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _key_and_cert() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glewlwyd-test")])
    now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + __import__("datetime").timedelta(days=1)).sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem_key, cert.public_bytes(serialization.Encoding.PEM).decode()


CONFIG = """port={port}
bind_address="127.0.0.1"
external_url="{url}"
login_url="login.html"
api_prefix="api"
static_files_path="{webapp}/"
allow_origin="*"
log_mode="file"
log_level="DEBUG"
log_file="{log}"
cookie_domain=""
cookie_secure=0
cookie_same_site="lax"
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
add_x_frame_option_header_deny=true
max_post_size=1048576
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="{modules}/user"
user_middleware_module_path="{middleware}"
client_module_path="{modules}/client"
user_auth_scheme_module_path="{modules}/scheme"
plugin_module_path="{modules}/plugin"
hash_algorithm="SHA512"
database = {{ type = "sqlite3"  path = "{db}" }};
static_files_mime_types = (
  {{ extension = ".html" mime_type = "text/html" compress = 1 }},
  {{ extension = ".css" mime_type = "text/css" compress = 1 }},
  {{ extension = ".js" mime_type = "application/javascript" compress = 1 }},
  {{ extension = ".json" mime_type = "application/json" compress = 1 }},
  {{ extension = ".png" mime_type = "image/png" compress = 0 }},
  {{ extension = ".ico" mime_type = "image/x-icon" compress = 0 }},
  {{ extension = ".svg" mime_type = "image/svg+xml" compress = 1 }},
  {{ extension = ".woff" mime_type = "font/woff" compress = 0 }},
  {{ extension = ".woff2" mime_type = "font/woff2" compress = 0 }},
  {{ extension = ".ttf" mime_type = "font/ttf" compress = 0 }}
);
"""


@dataclass
class Provider:
    """A running Glewlwyd: ``issuer`` is what the relying party is configured with."""

    url: str
    issuer: str
    log: Path
    process: subprocess.Popen[bytes]
    admin: httpx.Client = field(repr=False)

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 300:
            raise AssertionError(f"glewlwyd {response.request.method} {response.request.url}: "
                                 f"{response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def add_client(self, client_id: str, secret: str, redirect_uri: str, post_logout_uri: str) -> None:
        self._ok(self.admin.post("/api/client/", json={
            "client_id": client_id, "name": client_id, "enabled": True, "confidential": True, "password": secret,
            "scope": ["openid"], "redirect_uri": [redirect_uri], "authorization_type": ["code"],
            "token_endpoint_auth_method": ["client_secret_basic"],
            "post_logout_redirect_uris": [post_logout_uri]}))

    def add_user(self, username: str, password: str, *, name: str = "", email: str = "",
                 grant_clients: list[str] = ()) -> None:  # type: ignore[assignment]
        """A user who may ask for ``openid``, having consented already to ``grant_clients`` (no consent screen in
        the browser journey)."""
        self._ok(self.admin.post("/api/user/", json={
            "username": username, "password": password, "name": name, "email": email, "enabled": True,
            "scope": ["openid", "g_profile"]}))
        with httpx.Client(base_url=self.url, timeout=10) as user:
            self.log_in(user, username, password)
            for client_id in grant_clients:
                self._ok(user.put(f"/api/auth/grant/{client_id}", json={"scope": "openid"}))

    def log_in(self, client: httpx.Client, username: str, password: str) -> None:
        """Glewlwyd's session cookie comes with an empty ``Domain=`` (host-only for a browser), which httpx's
        cookie jar drops: keep it by hand."""
        response = client.post("/api/auth/", json={"username": username, "password": password})
        self._ok(response)
        client.cookies.set(SESSION_COOKIE, response.cookies.get(SESSION_COOKIE) or
                           response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1])

    def stop(self) -> None:
        self.admin.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def available() -> tuple[bool, str]:
    if shutil.which("glewlwyd") is None:
        return False, "Debian's `glewlwyd` is not installed (make test runs scripts/ensure-oidc-provider.sh as root)"
    if not SCHEMA.exists() or not WEBAPP.is_dir() or not WEBAPP_CONFIG.exists():
        return False, f"glewlwyd's schema {SCHEMA} or web application {WEBAPP} ({WEBAPP_CONFIG}) is missing"
    return True, ""


def _database(path: Path, issuer: str) -> None:
    key, cert = _key_and_cert()
    params = {
        "iss": issuer, "jwt-type": "rsa", "jwt-key-size": "256", "key": key, "cert": cert,
        "access-token-duration": 3600, "refresh-token-duration": 1209600, "code-duration": 600,
        "refresh-token-rolling": True, "allow-non-oidc": False, "auth-type-code-enabled": True,
        "auth-type-token-enabled": False, "auth-type-id-token-enabled": True, "auth-type-none-enabled": False,
        "auth-type-password-enabled": False, "auth-type-client-enabled": False, "auth-type-refresh-enabled": True,
        "scope": [], "subject-type": "public", "jwks-show": True, "pkce-allowed": True,
        "pkce-method-plain-allowed": False, "session-management-allowed": True,
        "session-cookie-name": "GLEWLWYD_OIDC_SID", "session-cookie-expiration": 3600, "request-parameter-allow": False,
        "claims": [{"name": "preferred_username", "user-property": "username", "type": "string", "mandatory": True}],
        "email-claim": "mandatory", "name-claim": "mandatory", "address-claim": {"type": "no"},
    }
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(gzip.decompress(SCHEMA.read_bytes()).decode())
        db.execute("INSERT INTO g_plugin_module_instance (gpmi_module, gpmi_name, gpmi_display_name, gpmi_parameters)"
                   " VALUES ('oidc', ?, 'OpenID Connect', ?)", (PLUGIN, json.dumps(params)))
        db.execute("UPDATE g_scope SET gs_password_required = 1, gs_password_max_age = 3600 WHERE gs_name = 'openid'")
        db.execute("INSERT INTO g_user_scope (gus_name) VALUES ('openid')")  # users of the database module may have it
        # end_session looks for the client's ``post_logout_redirect_uris`` (a list): let the client module keep one
        row = db.execute("SELECT gcmi_parameters FROM g_client_module_instance WHERE gcmi_name = 'database'").fetchone()
        client_params = json.loads(row[0])
        client_params["data-format"]["post_logout_redirect_uris"] = {"multiple": True, "read": True, "write": True}
        db.execute("UPDATE g_client_module_instance SET gcmi_parameters = ? WHERE gcmi_name = 'database'",
                   (json.dumps(client_params),))
        db.commit()


def start_glewlwyd(tmp: Path) -> Provider:
    ok, why = available()
    require("Glewlwyd (OpenID Provider)", ok, why)
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    issuer = f"{url}/api/{PLUGIN}"
    db, log, conf = tmp / "glewlwyd.db", tmp / "glewlwyd.log", tmp / "glewlwyd.conf"
    (tmp / "middleware").mkdir(exist_ok=True)
    _database(db, issuer)
    # Debian's webapp/config.json links to a directory (/etc/glewlwyd/config-2.7.json/), so the login page never
    # gets its settings: serve a copy (Glewlwyd serves no symbolic links) with the real file in place (~3 MB)
    webapp = tmp / "webapp"
    shutil.copytree(WEBAPP, webapp, ignore=shutil.ignore_patterns("config.json"))
    shutil.copyfile(WEBAPP_CONFIG, webapp / "config.json")
    conf.write_text(CONFIG.format(port=port, url=url, webapp=webapp, log=log, modules=MODULES,
                                  middleware=tmp / "middleware", db=db))
    with (tmp / "stdout.log").open("ab") as out:
        process = subprocess.Popen(["glewlwyd", f"--config-file={conf}"], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
    admin = httpx.Client(base_url=url, timeout=10)
    provider = Provider(url=url, issuer=issuer, log=log, process=process, admin=admin)
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            response = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
            if response.status_code == 200:
                provider.log_in(admin, *ADMIN)
                return provider
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    provider.stop()
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"glewlwyd did not answer its discovery document ({last}):\n{tail}")


@contextlib.contextmanager
def running_glewlwyd(tmp: Path) -> Iterator[Provider]:
    provider = start_glewlwyd(tmp)
    try:
        yield provider
    finally:
        provider.stop()
