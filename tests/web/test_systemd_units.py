"""The systemd units for agencies without containers (``docker/systemd/``, issue 17): ``systemd-analyze verify``
accepts them without a warning (with the installed ``eoffice`` command in place of /opt/eoffice's), every
``ExecStart`` is a real ``eoffice`` command line (its options parse, and the command answers ``--help``), every
variable of the example environment file is one the server reads, and the stop timeout covers the drain."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from web.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "docker" / "systemd"
INSTALLED = "/opt/eoffice/.venv/bin/eoffice"  # where the units expect the command (README)
EOFFICE = Path(sys.executable).parent / "eoffice"
SERVICES = ["eoffice@.service", "eoffice-migrate.service"]


def _directives(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _rendered(directory: Path) -> Path:
    for name in SERVICES:
        (directory / name).write_text((UNITS / name).read_text().replace(INSTALLED, str(EOFFICE)))
    return directory


@pytest.mark.parametrize("unit", ["eoffice@8001.service", "eoffice-migrate.service"])
def test_systemd_analyze_verify_accepts_the_units(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require("systemd-analyze", analyze is not None, "apt-get install systemd (make test runs scripts/ensure-nginx.sh)")
    assert analyze is not None and EOFFICE.exists()
    directory = _rendered(tmp_path)
    result = subprocess.run([analyze, "verify", str(directory / unit)], capture_output=True, text=True, cwd=directory)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # and it does look: a unit naming a command that is not there is refused
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in SERVICES:
        (broken / name).write_text((UNITS / name).read_text())
    refused = subprocess.run([analyze, "verify", str(broken / unit)], capture_output=True, text=True, cwd=broken)
    assert refused.returncode != 0 and "not executable" in refused.stderr


def test_every_exec_start_is_a_real_eoffice_command() -> None:
    parser = build_parser()
    for name in SERVICES:
        starts = _directives(UNITS / name)["ExecStart"]
        assert len(starts) == 1
        argv = starts[0].replace("%i", "8001").split()
        assert argv[0] == INSTALLED
        args = parser.parse_args(argv[1:])  # an unknown option or command exits here
        assert callable(args.func)
        shown = subprocess.run([str(EOFFICE), *argv[1:2], "--help"], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "usage: eoffice" in shown.stdout, shown.stderr


def test_hardening_and_stop_timeout() -> None:
    serve = _directives(UNITS / "eoffice@.service")
    for units in (serve, _directives(UNITS / "eoffice-migrate.service")):
        assert units["User"] == ["eoffice"] and units["ProtectSystem"] == ["strict"]
        assert units["NoNewPrivileges"] == ["yes"] and units["PrivateTmp"] == ["yes"]
        assert units["ReadWritePaths"] == ["/var/lib/eoffice"] and units["EnvironmentFile"] == [
            "/etc/eoffice/eoffice.env"
        ]
    assert "eoffice-migrate.service" in serve["Requires"][0] and "eoffice-migrate.service" in serve["After"][0]
    env = dict(
        line.split("=", 1)
        for line in (UNITS / "eoffice.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    drain = float(env["EOFFICE_DRAIN_DELAY"]) + float(env["EOFFICE_DRAIN_GRACE"])
    assert float(serve["TimeoutStopSec"][0]) > drain


def test_every_variable_of_the_env_file_is_read_by_the_server() -> None:
    known: set[str] = set()
    for package in ("eoffice", "meetings", "storage", "web"):
        for source in (ROOT / package).rglob("*.py"):
            known.update(re.findall(r"\bEOFFICE_[A-Z0-9_]+\b", source.read_text()))
    named = set(re.findall(r"^#?(EOFFICE_[A-Z0-9_]+)=", (UNITS / "eoffice.env").read_text(), flags=re.MULTILINE))
    assert len(named) >= 10
    assert named <= known, f"not read anywhere: {sorted(named - known)}"
