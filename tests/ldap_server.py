"""A real OpenLDAP ``slapd`` for tests: an unprivileged process on a free loopback port with a generated
slapd.conf (mdb backend) in a temporary directory, loaded through LDAP itself with a province-shaped tree.

Since 2025-07-01 communes report directly to the province; the tree keeps both shapes: two communes under a
town (as directories not yet reorganised still have them) and two directly under the province.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ldap3

from tests.conftest import free_port, require, tcp_open

BASE = "dc=quangninh,dc=gov,dc=vn"
ROOT_DN, ROOT_PW = f"cn=admin,{BASE}", "Quan-tri-LDAP-2026"
SERVICE_DN, SERVICE_PW = f"cn=eoffice,{BASE}", "Dich-vu-eoffice-2026"
PERSON_PW = "Mật-khẩu-LDAP-2026"  # every person's directory password
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")

PROVINCE = "Ủy ban nhân dân tỉnh Quảng Ninh"
# (ou, businessCategory, parent ou or None for the province)
UNITS: list[tuple[str, str, str | None]] = [
    (PROVINCE, "Tỉnh", None),
    ("Sở Nội vụ", "Sở", PROVINCE),
    ("Sở Tài chính", "Sở", PROVINCE),
    ("Sở Y tế", "Sở", PROVINCE),
    ("Thị xã Đông Triều", "Huyện", PROVINCE),
    ("Thị xã Quảng Yên", "Huyện", PROVINCE),
    ("Xã Bình Khê", "Xã", "Thị xã Đông Triều"),
    ("Phường Mạo Khê", "Xã", "Thị xã Đông Triều"),
    ("Xã Tiên Yên", "Xã", PROVINCE),  # since 2025-07-01: directly under the province
    ("Đặc khu Vân Đồn", "Xã", PROVINCE),
]
# (uid, cn, title, unit ou, disabled)
PEOPLE: list[tuple[str, str, str, str, bool]] = [
    ("chutich", "Trần Văn Hùng", "Chủ tịch", PROVINCE, False),
    ("phochutich", "Đỗ Quang Vinh", "Phó Chủ tịch", PROVINCE, False),
    ("vanthu.ubnd", "Nguyễn Thị Lan", "Văn thư", PROVINCE, False),
    ("giamdoc.snv", "Phạm Thu Hà", "Giám đốc", "Sở Nội vụ", False),
    ("chuyenvien.snv", "Lê Minh Đức", "Chuyên viên", "Sở Nội vụ", False),
    ("giamdoc.stc", "Hoàng Văn Bình", "Giám đốc", "Sở Tài chính", False),
    ("ketoan.stc", "Vũ Thị Hồng", "Kế toán", "Sở Tài chính", False),
    ("giamdoc.syt", "Đặng Quốc Khánh", "Giám đốc", "Sở Y tế", False),
    ("bacsi.syt", "Bùi Thị Ngọc", "Chuyên viên", "Sở Y tế", False),
    ("chutich.dongtrieu", "Lý Văn Đức", "Chủ tịch", "Thị xã Đông Triều", False),
    ("vanthu.dongtrieu", "Ngô Thị Thu", "Văn thư", "Thị xã Đông Triều", False),
    ("chutich.quangyen", "Phan Văn Tài", "Chủ tịch", "Thị xã Quảng Yên", False),
    ("chutich.binhkhe", "Trịnh Văn Sơn", "Chủ tịch", "Xã Bình Khê", False),
    ("congchuc.binhkhe", "Mai Thị Yến", "Công chức", "Xã Bình Khê", False),
    ("chutich.maokhe", "Đoàn Văn Thắng", "Chủ tịch", "Phường Mạo Khê", False),
    ("chutich.tienyen", "Hà Thị Ánh", "Chủ tịch", "Xã Tiên Yên", False),
    ("congchuc.tienyen", "Tạ Văn Lợi", "Công chức", "Xã Tiên Yên", False),
    ("chutich.vandon", "Lương Thị Dung", "Chủ tịch", "Đặc khu Vân Đồn", False),
    ("congchuc.vandon", "Quách Văn Hải", "Công chức", "Đặc khu Vân Đồn", False),
    ("nghihuu.snv", "Kiều Văn Cường", "Chuyên viên", "Sở Nội vụ", True),  # disabled (employeeType=disabled)
]


def _slapd() -> str | None:
    return shutil.which("slapd") or next((p for p in ("/usr/sbin/slapd",) if Path(p).exists()), None)


@dataclass
class Slapd:
    url: str
    workdir: Path
    process: subprocess.Popen[bytes]
    dns: dict[str, str] = field(default_factory=dict)  # unit ou or person uid -> its DN

    def admin(self) -> ldap3.Connection:
        return ldap3.Connection(ldap3.Server(self.url), ROOT_DN, ROOT_PW, auto_bind=True, raise_exceptions=True)

    def unit_dn(self, ou: str) -> str:
        return self.dns[ou]


def _config(workdir: Path, port: int) -> Path:
    db = workdir / "db"
    db.mkdir()
    schema = "\n".join(f"include /etc/ldap/schema/{s}.schema" for s in SCHEMAS)
    conf = workdir / "slapd.conf"
    conf.write_text(f"""{schema}
pidfile {workdir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 67108864
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {db}
index objectClass eq
index uid eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{SERVICE_DN}" read by users read by * none
""")
    return conf


def _load(server: Slapd) -> None:
    c = server.admin()
    c.add(BASE, ["dcObject", "organization"], {"dc": "quangninh", "o": "Tỉnh Quảng Ninh"})
    c.add(SERVICE_DN, ["organizationalRole", "simpleSecurityObject"], {"cn": "eoffice", "userPassword": SERVICE_PW})
    for ou, category, parent in UNITS:
        dn = f"ou={ldap3.utils.dn.escape_rdn(ou)},{server.dns[parent] if parent else BASE}"
        c.add(dn, ["organizationalUnit"], {"ou": ou, "businessCategory": category})
        server.dns[ou] = dn
    for uid, cn, title, unit, disabled in PEOPLE:
        dn = f"uid={uid},{server.dns[unit]}"
        attrs = {
            "uid": uid,
            "cn": cn,
            "sn": cn.split()[0],
            "title": title,
            "mail": f"{uid}@quangninh.gov.vn",
            "userPassword": PERSON_PW,
        }
        if disabled:
            attrs["employeeType"] = "disabled"
        c.add(dn, ["inetOrgPerson"], attrs)
        server.dns[uid] = dn
    c.unbind()


@contextlib.contextmanager
def running_slapd(tmp: Path) -> Iterator[Slapd]:
    """slapd on a free port, loaded with the province; stopped (by its pid) and its files removed after."""
    binary = _slapd()
    require("OpenLDAP slapd", binary is not None, "install with `make ldap` (scripts/ensure-ldap.sh)")
    assert binary is not None
    port = free_port()
    workdir = tmp / "slapd"
    workdir.mkdir()
    conf = _config(workdir, port)
    url = f"ldap://127.0.0.1:{port}"
    # -d 0: stays in the foreground (a child of the tests, stopped by its pid), logs nothing
    process = subprocess.Popen(
        [binary, "-f", str(conf), "-h", url + "/", "-d", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while not tcp_open("127.0.0.1", port):
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"slapd exited ({process.returncode}): {err[-2000:]}")
            assert time.monotonic() < deadline, "slapd did not start listening in 20 s"
            time.sleep(0.05)
        server = Slapd(url=url, workdir=workdir, process=process)
        _load(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
