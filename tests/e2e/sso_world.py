"""Shared pieces of the OpenID Connect login tests: a real provider (Glewlwyd, tests/oidc_provider.py), servers
configured to use it, and the provider's half of a login driven without a browser (its login API, then its
authorization endpoint answering with a redirect to our callback)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.e2e.conftest import LiveServer, start_server
from tests.oidc_provider import Provider

CLIENT_SECRET = "Bi-mat-ung-dung-2026"
PASSWORD = "Mat-khau-SSO-2026"


def sso_env(provider: Provider, client_id: str, **extra: str) -> dict[str, str]:
    env = {"EOFFICE_OIDC_ISSUER": provider.issuer, "EOFFICE_OIDC_CLIENT_ID": client_id,
           "EOFFICE_OIDC_CLIENT_SECRET": CLIENT_SECRET}
    env.update({f"EOFFICE_OIDC_{k.upper()}": v for k, v in extra.items()})
    return env


def sso_server(provider: Provider, var_dir: Path, **extra: str) -> Iterator[LiveServer]:
    """Our server (demo organisation) using ``provider``, registered there as a client of its own."""
    client_id = "eoffice-" + secrets.token_hex(4)
    for server in start_server(var_dir, env_extra=sso_env(provider, client_id, **extra)):
        provider.add_client(client_id, CLIENT_SECRET, server + "/login/sso/callback", server + "/login?done=logout")
        server.client_id = client_id  # type: ignore[attr-defined]
        yield server


@contextlib.contextmanager
def provider_session(provider: Provider, username: str) -> Iterator[httpx.Client]:
    """A browser-less user logged in at the provider (its cookie), to answer authorization requests."""
    with httpx.Client(base_url=provider.url, timeout=10) as client:
        provider.log_in(client, username, PASSWORD)
        yield client


def authorize(at_provider: httpx.Client, authorization_url: str) -> str:
    """The provider's answer to an authorization request: the URL of our callback with code and state.
    ``g_continue`` is what Glewlwyd's login page adds when it sends the browser back (without it the provider
    shows that page first)."""
    response = at_provider.get(authorization_url + "&g_continue")
    assert response.status_code == 302, (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert "code=" in location, location
    return location


def start(ours: httpx.Client) -> str:
    """``/login/sso`` on our server: the authorization URL it sends the browser to (its cookie kept by ``ours``)."""
    response = ours.get("/login/sso")
    assert response.status_code == 303, (response.status_code, response.text[:500])
    return response.headers["location"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
