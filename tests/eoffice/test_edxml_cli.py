"""`eoffice edxml import` / `export` end to end on an embedded database."""

from __future__ import annotations

from pathlib import Path

from tests.eoffice.test_cli import _run
from tests.eoffice.test_edxml import CORPUS, xml


def test_edxml_import_and_export_commands(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate").returncode == 0
    assert _run(tmp_path, "demo").returncode == 0
    good, bad = tmp_path / "cv125.xml", tmp_path / "thieu-so.xml"
    good.write_bytes(xml())
    bad.write_bytes(CORPUS["missing_code"][0])

    no_user = _run(tmp_path, "edxml", "import", str(good))
    assert no_user.returncode != 0 and "--as" in no_user.stderr

    out = _run(tmp_path, "edxml", "import", str(good), str(bad), "--as", "vanthu")
    assert out.returncode == 1  # one package refused
    assert "cv125.xml: registered" in out.stdout and "125/UBND-VX" in out.stdout
    assert "thieu-so.xml: TỪ CHỐI — Thiếu số, ký hiệu văn bản (Code/CodeNumber)" in out.stderr
    assert "Nhập gói tin edXML [" in out.stderr and "2/2" in out.stderr

    doc_id = out.stdout.split("văn bản #")[1].split(" ")[0]
    refused = _run(tmp_path, "edxml", "export", doc_id, "-o", str(tmp_path / "out.xml"), "--as", "vanthu")
    assert refused.returncode == 2 and "đã phát hành" in refused.stderr and not (tmp_path / "out.xml").exists()
    assert _run(tmp_path, "audit", "verify").returncode == 0
