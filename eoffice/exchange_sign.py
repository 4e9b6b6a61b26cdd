"""Signed requests between installations (#16): Ed25519 over the method, the path, the timestamp, the request id,
the sending and receiving organisations, the idempotency key and the body's SHA-256. Pure (no I/O).

The installation's private key is derived from its secret (``storage.keys``: the key directory or
``EOFFICE_SECRET_KEY``), so it lives where the installation's other keys live and is backed up (or not) with them;
``eoffice exchange key`` prints the public half for the other side's administrators."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storage import keys

KEY_LABEL = "exchange-ed25519"
REPLAY_WINDOW = 300  # seconds a signed request stays acceptable (clocks of both installations, with NTP)
H_FROM, H_TO, H_TIME, H_REQUEST, H_KEY, H_SIGNATURE = (
    "x-exchange-from", "x-exchange-to", "x-exchange-timestamp", "x-exchange-request-id", "x-exchange-key",
    "x-exchange-signature")


def private_key(secret: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(keys.derive(secret, KEY_LABEL))


def public_key_text(secret: str) -> str:
    raw = private_key(secret).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(text: str) -> Ed25519PublicKey:
    """A peer's key as printed by ``eoffice exchange key``; ValueError when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("khóa công khai không đúng định dạng base64") from None
    if len(raw) != 32:
        raise ValueError("khóa công khai Ed25519 phải dài 32 byte")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class Envelope:
    """What a request's signature covers, besides method and path."""

    from_organ: str
    to_organ: str
    timestamp: int
    request_id: str
    idem_key: str

    def headers(self) -> dict[str, str]:
        return {H_FROM: self.from_organ, H_TO: self.to_organ, H_TIME: str(self.timestamp),
                H_REQUEST: self.request_id, H_KEY: self.idem_key}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Envelope:
        """ValueError when a header is missing or malformed."""
        values = {h: headers.get(h, "").strip() for h in (H_FROM, H_TO, H_TIME, H_REQUEST, H_KEY)}
        if not all(values.values()):
            raise ValueError("thiếu tiêu đề ký")
        if not (values[H_TIME].isascii() and values[H_TIME].isdigit()):
            raise ValueError("thời điểm ký không hợp lệ")
        return cls(values[H_FROM], values[H_TO], int(values[H_TIME]), values[H_REQUEST][:64], values[H_KEY][:140])


def _payload(method: str, path: str, env: Envelope, body: bytes) -> bytes:
    # header values are ASCII in practice; percent-free UTF-8 keeps Vietnamese organ ids intact
    return "\n".join([method.upper(), path, str(env.timestamp), env.request_id, env.from_organ, env.to_organ,
                      env.idem_key, hashlib.sha256(body).hexdigest()]).encode()


def sign(secret: str, method: str, path: str, env: Envelope, body: bytes) -> str:
    return base64.b64encode(private_key(secret).sign(_payload(method, path, env, body))).decode()


def verify(public_key: str, signature: str, method: str, path: str, env: Envelope, body: bytes) -> bool:
    try:
        key = load_public_key(public_key)
        key.verify(base64.b64decode(signature, validate=True), _payload(method, path, env, body))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def fresh(timestamp: int, now: float, window: int = REPLAY_WINDOW) -> bool:
    return abs(now - timestamp) <= window


__all__ = ["REPLAY_WINDOW", "Envelope", "fresh", "load_public_key", "public_key_text", "sign", "verify"]
