"""Local stand-ins for the outside services of notifications, for tests: an HTTP receiver that acts as a Web Push
service (RFC 8030) or an SMS gateway, and the browser's side of Web Push -- its subscription keys, the check of
the VAPID JWT (RFC 8292) and the decryption of the aes128gcm payload (RFC 8291, RFC 8188), written here with
``cryptography`` alone so the server's encryption (pywebpush / http_ece) is checked by independent code.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A threaded HTTP server on a free loopback port: records each POST and answers the next status of
    ``statuses`` (then ``default``)."""

    statuses: list[int] = field(default_factory=list)
    default: int = 201
    received: list[Request] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib calls it by this name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                receiver.received.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                receiver.answered.append(status)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Browser:
    """The browser's side of one Web Push subscription: its P-256 key pair and authentication secret."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def subscription(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives a page."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64url(self.public), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 section 3.4 and RFC 8188: one aes128gcm record."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        server_public, ciphertext = body[21 : 21 + idlen], body[21 + idlen :]
        assert idlen == 65 and len(ciphertext) <= rs, (idlen, rs, len(ciphertext))
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), server_public)
        shared = self.key.exchange(ec.ECDH(), peer)
        key_info = b"WebPush: info\x00" + self.public + server_public
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=key_info).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        text = padded.rstrip(b"\x00")
        assert text.endswith(b"\x02"), "the last record's padding delimiter"
        return text[:-1]


def check_vapid(headers: dict[str, str], server_key: str, audience: str) -> dict[str, Any]:
    """The ``Authorization: vapid t=<JWT>, k=<key>`` of a push request (RFC 8292): the key is the server's, the
    ES256 signature verifies with it, the audience is the push service's origin and it has not expired.
    Returns the JWT's claims."""
    scheme, _, params = headers["authorization"].partition(" ")
    assert scheme.lower() == "vapid", headers["authorization"]
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert fields["k"] == server_key
    head_b64, claims_b64, sig_b64 = fields["t"].split(".")
    header = json.loads(unb64url(head_b64))
    assert header == {"typ": "JWT", "alg": "ES256"} or header.get("alg") == "ES256", header
    sig = unb64url(sig_b64)
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    claims: dict[str, Any] = json.loads(unb64url(claims_b64))
    assert claims["aud"] == audience
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    return claims
