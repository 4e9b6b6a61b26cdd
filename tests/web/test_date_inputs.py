"""Dates in the e-office forms are shown and read as dd/mm/yyyy, not in the browser's locale."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from eoffice.org import Role
from storage.settings import Settings
from tests.web.conftest import add_user, login
from web.routes.office_common import opt_date


def test_date_fields_are_text_in_dd_mm_yyyy(client: TestClient, settings: Settings) -> None:
    add_user(settings, "vanthu", Role.CLERK, full_name="Nguyễn Thị Lan")
    login(client, "vanthu")
    page = client.get("/search?from=01/01/2026&to=2026-03-31")
    assert page.status_code == 200
    assert 'type="date"' not in page.text
    fields = dict(re.findall(r'name="(from|to)" value="([^"]*)"', page.text))
    assert fields == {"from": "01/01/2026", "to": "31/03/2026"}
    assert 'placeholder="dd/mm/yyyy"' in page.text and "/static/js/office/dates.js" in page.text
    assert opt_date("05/01/2026", "Ngày").isoformat() == "2026-01-05"  # type: ignore[union-attr]
    assert opt_date("2026-01-05", "Ngày").isoformat() == "2026-01-05"  # type: ignore[union-attr]
    assert client.get("/static/js/office/dates.js").status_code == 200
