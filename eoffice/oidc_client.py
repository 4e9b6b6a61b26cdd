"""OpenID Connect relying party, the protocol half (no database): discovery, the authorization request with PKCE,
the code exchange and the ID token's validation. The accounts half is ``eoffice.sso``.

- Discovery: ``{issuer}/.well-known/openid-configuration``, kept ``METADATA_SECONDS``; its ``issuer`` must be
  exactly the configured one (OpenID Connect Discovery §4.3), and a provider that lists its PKCE methods must
  list S256.
- Authorization request (authlib's ``prepare_grant_uri``): response_type=code, ``state`` and ``nonce`` random,
  PKCE S256 (``create_s256_code_challenge``).
- Code exchange at the token endpoint with the client secret (HTTP Basic, ``client_secret_basic``) and the PKCE
  verifier; only the ``id_token`` of the answer is used.
- ID token (joserfc, the JOSE library authlib's own ``authlib.jose`` now defers to): signature with a key of the
  provider's JWKS (fetched again once when the ``kid`` is unknown: key rotation), asymmetric algorithms only
  (never ``none`` nor HMAC), then ``iss``, ``aud`` (and ``azp`` when there are several audiences), ``exp``,
  ``iat`` and ``nonce``, with ``LEEWAY_SECONDS`` for clock skew.

Every refusal is an ``Unauthenticated`` with a Vietnamese message for the login page and a ``reason`` for the
audit log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from storage.errors import Unauthenticated

METADATA_SECONDS = 3600.0
HTTP_TIMEOUT = 10.0
LEEWAY_SECONDS = 60
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

UNREACHABLE = ("Không kết nối được với hệ thống đăng nhập một cửa (SSO). Vui lòng thử lại sau hoặc đăng nhập bằng "
               "tên đăng nhập và mật khẩu.")
BAD_TOKEN = "Mã định danh (ID token) từ hệ thống đăng nhập một cửa không hợp lệ"


def refused(message: str, reason: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


@dataclass
class OidcClient:
    """One relying party registration (``client_id``, ``client_secret``) at one provider (``issuer``)."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: str = "openid profile email"
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=HTTP_TIMEOUT))
    _metadata: dict[str, Any] | None = field(default=None, repr=False)
    _metadata_at: float = 0.0
    _keys: KeySet | None = field(default=None, repr=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise refused(UNREACHABLE, "provider_unreachable") from exc
        if not isinstance(data, dict):
            raise refused(UNREACHABLE, "provider_unreachable")
        return data

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_SECONDS:
            data = await self._get_json(self.issuer + "/.well-known/openid-configuration")
            if data.get("issuer") != self.issuer:  # a document for another provider is not this one's
                raise refused(UNREACHABLE, "issuer_mismatch")
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(data.get(name), str):
                    raise refused(UNREACHABLE, "metadata_incomplete")
            methods = data.get("code_challenge_methods_supported")
            if isinstance(methods, list) and "S256" not in methods:
                raise refused(UNREACHABLE, "pkce_unsupported")
            self._metadata, self._metadata_at = data, time.monotonic()
        return self._metadata

    def known_origins(self) -> list[str]:
        """Origins the browser is sent to (the page CSP's form-action lets a logout form's redirect reach them)."""
        urls = [self.issuer]
        if self._metadata:
            urls += [self._metadata.get("authorization_endpoint", ""), self._metadata.get("end_session_endpoint", "")]
        return sorted({o for o in map(origin, urls) if o})

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        meta = await self.metadata()
        return str(prepare_grant_uri(meta["authorization_endpoint"], self.client_id, "code", redirect_uri=redirect_uri,
                                     scope=self.scopes, state=state, nonce=nonce,
                                     code_challenge=create_s256_code_challenge(verifier),
                                     code_challenge_method="S256"))

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> str:
        """The ID token the token endpoint gives for ``code`` (raw, not yet validated)."""
        meta = await self.metadata()
        try:
            response = await self.http.post(
                meta["token_endpoint"], auth=(self.client_id, self.client_secret),
                headers={"Accept": "application/json"},
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                      "code_verifier": verifier})
        except httpx.HTTPError as exc:
            raise refused(UNREACHABLE, "provider_unreachable") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200 or not isinstance(data, dict) or not isinstance(data.get("id_token"), str):
            error = data.get("error", response.status_code) if isinstance(data, dict) else response.status_code
            raise refused("Hệ thống đăng nhập một cửa không chấp nhận mã xác thực (có thể đã được dùng hoặc hết hạn). "
                          "Vui lòng đăng nhập lại.", f"token_endpoint:{error}")
        return str(data["id_token"])

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks = await self._get_json((await self.metadata())["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise refused(UNREACHABLE, "jwks_invalid") from exc
        return self._keys

    async def _verified(self, id_token: str) -> dict[str, Any]:
        for refresh in (False, True):
            keys = await self._key_set(refresh)
            try:
                return dict(jwt.decode(id_token, keys, algorithms=ALGORITHMS).claims)
            except BadSignatureError as exc:
                if refresh:
                    raise refused(f"{BAD_TOKEN}: chữ ký không đúng.", "id_token_signature") from exc
            except InvalidKeyIdError as exc:  # no key of that kid: the provider may have rotated, fetch again
                if refresh:
                    raise refused(f"{BAD_TOKEN}: không tìm thấy khóa ký.", "id_token_key") from exc
            except JoseError as exc:
                raise refused(f"{BAD_TOKEN}.", f"id_token:{exc.error}") from exc
        raise AssertionError("unreachable")

    async def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of a genuine ID token for us, issued for the login that carried ``nonce``."""
        claims = await self._verified(id_token)
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS, iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id}, sub={"essential": True}, exp={"essential": True},
            iat={"essential": True}, nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise refused(f"{BAD_TOKEN}: đã hết hạn.", "id_token_expired") from exc
        except (InvalidClaimError, MissingClaimError) as exc:
            claim = getattr(exc, "claim", "") or ""
            what = {"nonce": "nonce không khớp với lần đăng nhập này", "iss": "không do nhà cung cấp đã cấu hình cấp",
                    "aud": "không cấp cho hệ thống này"}.get(claim, f"thông tin «{claim}» không hợp lệ")
            raise refused(f"{BAD_TOKEN}: {what}.", f"id_token_{claim or 'claims'}") from exc
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise refused(f"{BAD_TOKEN}: không cấp cho hệ thống này.", "id_token_azp")
        return claims

    async def logout_url(self, id_token: str, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout at the provider, or None when it has no ``end_session_endpoint``."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except Unauthenticated:
            return None  # the provider is unreachable: the local logout stands on its own
        if not isinstance(endpoint, str) or not endpoint:
            return None
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri,
                           "client_id": self.client_id})
        return endpoint + ("&" if "?" in endpoint else "?") + query
