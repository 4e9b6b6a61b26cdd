"""Without ``EOFFICE_OIDC_ISSUER`` there is no SSO: no button, its paths answer 404, the page CSP names no
provider; the settings refuse a mapping they do not know. The login itself: tests/e2e/test_sso_*.py."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from eoffice.sso import SsoPolicy, provider_mfa
from storage.settings import Settings


def test_no_sso_unless_configured(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and "/login/sso" not in page.text and "một cửa" not in page.text
    assert "form-action 'self';" in page.headers["content-security-policy"]
    assert client.get("/login/sso", follow_redirects=False).status_code == 404
    assert client.get("/login/sso/callback?state=x&code=y", follow_redirects=False).status_code == 404


def test_provider_mfa_by_amr_or_acr() -> None:
    policy = SsoPolicy(mfa_amr=("otp", "hwk"), mfa_acr=("urn:vn:loa:3",))
    assert provider_mfa({"amr": ["pwd", "otp"]}, policy)
    assert provider_mfa({"acr": "urn:vn:loa:3"}, policy)
    assert not provider_mfa({"amr": ["pwd"], "acr": "urn:vn:loa:1"}, policy)
    assert not provider_mfa({"amr": "otp"}, policy)  # amr is a list; a bare string is not trusted
    assert not provider_mfa({"amr": ["otp"]}, SsoPolicy())  # nothing configured: ours applies


def test_oidc_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOFFICE_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("EOFFICE_OIDC_ISSUER", "https://sso.quangninh.gov.vn/realms/tinh/")
    monkeypatch.setenv("EOFFICE_OIDC_MATCH", "email")
    monkeypatch.setenv("EOFFICE_OIDC_MFA_AMR", "otp, hwk mfa")
    settings = Settings.from_env()
    assert settings.oidc_issuer == "https://sso.quangninh.gov.vn/realms/tinh"
    assert settings.oidc_match == "email" and settings.oidc_mfa_amr == ("otp", "hwk", "mfa")
    monkeypatch.setenv("EOFFICE_OIDC_MATCH", "sdt")
    with pytest.raises(ValueError, match="EOFFICE_OIDC_MATCH"):
        Settings.from_env()
