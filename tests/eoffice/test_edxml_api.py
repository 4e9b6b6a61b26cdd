"""edXML and signatures through the JSON API (bearer tokens), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from eoffice.edxml_parse import parse
from storage.settings import Settings
from tests.eoffice.conftest import Org, make_pdf
from tests.eoffice.test_api import _setup
from tests.eoffice.test_edxml import CORPUS, xml
from tests.eoffice.test_signatures import PASSPHRASE, make_pki
from tests.web.conftest import run
from web.app import create_app


@pytest.fixture
def world(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[TestClient, Org, dict[str, str]]]:
    pki = make_pki(tmp_path)
    monkeypatch.setenv("EOFFICE_SIGNING_P12", str(pki.p12))
    monkeypatch.setenv("EOFFICE_SIGNING_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("EOFFICE_TRUST_ROOTS", str(pki.root_pem))
    org, tokens = run(_setup(settings.database_url))  # type: ignore[misc]
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client, org, tokens


def test_edxml_through_the_api(world: tuple[TestClient, Org, dict[str, str]]) -> None:
    client, org, tokens = world

    def as_(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name]}"}

    def post(name: str, data: bytes, filename: str = "goi-tin.xml") -> object:
        return client.post("/api/edxml", content=data, headers={**as_(name), "Content-Type": "application/xml",
                                                                  "X-Filename": quote(filename)})

    assert client.post("/api/edxml", content=xml()).status_code in (401, 403)  # no session: CSRF/auth refuse
    assert post("chuyenvien", xml()).status_code == 403  # type: ignore[attr-defined]

    r = post("vanthu", CORPUS["billion_laughs"][0], "bom.xml")
    assert r.status_code == 422 and r.json()["problem"] == "entity_declaration" and r.json()["quarantine_id"]  # type: ignore[attr-defined]
    q = client.get("/api/edxml/quarantine", headers=as_("vanthu")).json()["items"]
    assert [i["filename"] for i in q] == ["bom.xml"] and "ENTITY" in q[0]["message"]
    assert client.get("/api/documents", headers=as_("vanthu")).json()["total"] == 0

    r = post("vanthu", xml(), "cv125.xml")
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    doc = r.json()["document"]  # type: ignore[attr-defined]
    assert doc["notation"] == "125/UBND-VX" and doc["number"] == 1
    assert [a["signed"] for a in r.json()["signatures"]] == [False]  # type: ignore[attr-defined]
    tl = client.get(f"/api/documents/{doc['id']}/edxml/timeline", headers=as_("vanthu")).json()
    assert tl["exchange"]["state"] == "active" and [e["code"] for e in tl["status_events"]] == ["01"]
    status = client.get(f"/api/edxml/status/{tl['status_events'][0]['id']}", headers=as_("vanthu"))
    assert status.status_code == 200 and parse(status.content).status.code == "01"  # type: ignore[union-attr]
    sigs = client.get(f"/api/documents/{doc['id']}/signatures", headers=as_("vanthu")).json()
    assert sigs["attachments"][0]["signed"] is False

    # an outgoing document, issued, exported: its PDF is signed in the package
    up = client.post("/api/files", content=make_pdf(["Quyết định về chuyển đổi số"]),
                     headers={**as_("chuyenvien"), "Content-Type": "application/pdf", "X-Filename": "qd.pdf"}).json()
    draft = client.post("/api/drafts", json={"doc_type": "quyet_dinh", "summary": "Quyết định về chuyển đổi số",
                                             "recipients": ["Bộ Thông tin và Truyền thông"], "upload_id": up["id"]},
                        headers=as_("chuyenvien"))
    assert draft.status_code == 201, draft.text
    did = draft.json()["id"]
    assert client.post(f"/api/drafts/{did}/send", json={"approver_id": org["truongphong"].id},
                       headers=as_("chuyenvien")).status_code == 201
    assert client.post(f"/api/drafts/{did}/approve", json={"forward_to": org["lanhdao"].id},
                       headers=as_("truongphong")).status_code == 200
    assert client.post(f"/api/drafts/{did}/approve", json={}, headers=as_("lanhdao")).status_code == 200
    assert client.post(f"/api/drafts/{did}/issue", json={"signer": "Trần Văn Hùng"},
                       headers=as_("vanthu")).status_code == 200
    exported = client.get(f"/api/documents/{did}/edxml", headers=as_("vanthu"))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/xml")
    pkg = parse(exported.content)
    assert pkg.notation.endswith("QĐ-UBND") and pkg.subject == "Quyết định về chuyển đổi số"
    sigs = client.get(f"/api/documents/{did}/signatures", headers=as_("vanthu")).json()["attachments"]
    (sig,) = sigs[0]["signatures"]
    assert sig["ok"] and sig["trusted"] and "Quảng Ninh" in sig["signer"]
    assert client.post(f"/api/documents/{did}/sign", headers=as_("vanthu")).json() == {"signed_attachments": []}

    # the package imported at another agency: registered there with the signature checked
    r = post("dt.vanthu", exported.content, "qd-ubnd.xml")
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    ((received_sig,),) = [a["signatures"] for a in r.json()["signatures"]]  # type: ignore[attr-defined]
    assert received_sig["ok"] and received_sig["trusted"] and not received_sig["modified_after_signing"]
    assert r.json()["document"]["agency_id"] == org.units["DT"].id  # type: ignore[attr-defined]
