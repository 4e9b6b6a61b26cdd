"""Personal signing certificates for tests (EOFFICE_PERSONAL_P12_DIR): a folder holding ``<username>.p12`` for two
people, issued by a test root (``tests.eoffice.test_signatures.make_pki``), all locked with ``PASSPHRASE``.
Shared by the minutes record, the consultations' report and the browser journey that signs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eoffice.signatures import load_certificates
from tests.eoffice.test_signatures import PASSPHRASE, make_pki

__all__ = ["PASSPHRASE", "personal_folder", "use_personal_keys"]


def personal_folder(tmp_path: Path, first: str, second: str) -> tuple[Path, list]:
    """``first`` gets the certificate of «Ủy ban nhân dân tỉnh Quảng Ninh», ``second`` that of «Sở Thông tin và
    Truyền thông». Returns the folder and the trusted roots to verify their signatures with."""
    pki = make_pki(tmp_path)
    folder = tmp_path / "personal"
    folder.mkdir()
    shutil.copy(pki.p12, folder / f"{first}.p12")
    shutil.copy(pki.other_p12, folder / f"{second}.p12")
    return folder, load_certificates(pki.root_pem.read_bytes())


def use_personal_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str, second: str) -> list:
    """``personal_folder`` set as EOFFICE_PERSONAL_P12_DIR for this test; returns the trusted roots."""
    folder, roots = personal_folder(tmp_path, first, second)
    monkeypatch.setenv("EOFFICE_PERSONAL_P12_DIR", str(folder))
    return roots
