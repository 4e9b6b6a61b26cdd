"""`eoffice org import`: units and accounts of a province from CSV or XLSX, idempotent, all-or-nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from eoffice import audit, identity
from eoffice.org import Unit, User
from eoffice.org_import import ImportRejected, apply_plan, plan_import
from eoffice.org_tables import read_tables
from storage.db import Database
from tests.eoffice.test_cli import _run

UNIT_HEADER = ["Mã đơn vị", "Tên đơn vị", "Đơn vị cha", "Loại", "Thứ tự"]
# a province since 2025-07-01: departments and communes directly under the provincial People's Committee
UNITS = [
    ["000.00.00.H41", "Ủy ban nhân dân tỉnh Quảng Ninh", "", "Tỉnh", "1"],
    ["000.00.01.H41", "Văn phòng Ủy ban nhân dân tỉnh", "000.00.00.H41", "Phòng", "2"],
    ["000.00.12.H41", "Sở Nội vụ", "000.00.00.H41", "Sở, ban, ngành", "3"],
    ["000.00.15.H41", "Sở Khoa học và Công nghệ", "000.00.00.H41", "Sở", "4"],
    ["000.77.01.H41", "Ủy ban nhân dân phường Đông Triều", "000.00.00.H41", "Xã", "20"],
    ["000.77.02.H41", "Ủy ban nhân dân xã Bình Khê", "000.00.00.H41", "Xã", "21"],
]
USER_HEADER = ["STT", "Tên đăng nhập", "Họ và tên", "Chức vụ", "Đơn vị", "Vai trò", "Thứ tự"]
USERS = [
    ["1", "chutich", "Trần Văn Hùng", "Chủ tịch", "000.00.00.H41", "Lãnh đạo", "1"],
    ["2", "phochutich", "Đỗ Quang Vinh", "Phó Chủ tịch", "000.00.00.H41", "Lãnh đạo", "2"],
    ["3", "vanthu.vp", "Nguyễn Thị Lan", "Văn thư", "000.00.01.H41", "Văn thư", ""],
    ["4", "giamdoc.snv", "Phạm Thu Hà", "Giám đốc", "000.00.12.H41", "Lãnh đạo", "1"],
    ["5", "chutich.dongtrieu", "Lý Văn Đức", "Chủ tịch", "000.77.01.H41", "lãnh đạo, chuyên viên", "1"],
]


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_xlsx(path: Path, units: list[list[str]], users: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "Đơn vị"
    sheet.append(UNIT_HEADER)
    for r in units:
        sheet.append([int(v) if v.isdigit() else v for v in r])  # numbers as Excel keeps them
    people = book.create_sheet("Cán bộ")
    people.append(USER_HEADER)
    for r in users:
        people.append(r)
    book.save(path)
    return path


def province_files(tmp_path: Path, fmt: str, units: list[list[str]] = UNITS,
                   users: list[list[str]] = USERS) -> list[Path]:
    if fmt == "xlsx":
        return [write_xlsx(tmp_path / "to-chuc.xlsx", units, users)]
    return [write_csv(tmp_path / "don-vi.csv", UNIT_HEADER, units),
            write_csv(tmp_path / "can-bo.csv", USER_HEADER, users, delimiter=";")]  # Excel's Vietnamese CSV


async def do_import(db: Database, files: list[Path], *, dry_run: bool = False, deactivate_missing: bool = False):  # type: ignore[no-untyped-def]
    tables = [t for f in files for t in read_tables(f)]
    async with db.uow() as uow:
        plan = await plan_import(uow, None, tables, deactivate_missing=deactivate_missing)
        if not dry_run:
            await apply_plan(uow, None, plan)
            await uow.commit()
    return plan


async def counts(db: Database) -> tuple[int, int, int]:
    async with db.uow(readonly=True) as uow:
        s = uow.session
        return (int(await s.scalar(select(func.count()).select_from(Unit)) or 0),
                int(await s.scalar(select(func.count()).select_from(User)) or 0),
                int(await s.scalar(select(func.count()).select_from(audit.AuditEntry)) or 0))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_province_imported_twice_then_title_changes(db: Database, tmp_path: Path, fmt: str) -> None:
    files = province_files(tmp_path, fmt)
    first = await do_import(db, files)
    assert first.count("create") == len(UNITS) + len(USERS) and first.count("update") == 0
    assert await counts(db) == (len(UNITS), len(USERS), len(UNITS) + len(USERS))

    again = await do_import(db, files)  # idempotent: nothing to change, nothing duplicated
    assert again.changes == []
    assert await counts(db) == (len(UNITS), len(USERS), len(UNITS) + len(USERS))

    async with db.uow(readonly=True) as uow:
        units = {u.code: u for u in (await uow.session.scalars(select(Unit))).all()}
        province = units["000.00.00.H41"]
        assert province.parent_id is None and province.kind == "province" and province.is_agency
        commune = units["000.77.02.H41"]
        assert commune.parent_id == province.id and commune.kind == "commune" and commune.rank == 21
        assert units["000.00.15.H41"].kind == "department"
        assert units["000.00.01.H41"].kind == "office" and not units["000.00.01.H41"].is_agency
        chair = await identity.get_user(uow, "chutich.dongtrieu")
        assert chair.unit_id == units["000.77.01.H41"].id and chair.roles == ["leader", "specialist"]
        assert chair.title == "Chủ tịch" and chair.rank == 1
        clerk = await identity.get_user(uow, "vanthu.vp")
        assert clerk.roles == ["clerk"] and clerk.rank == 1000  # no rank: after the ranked
        # no usable password until an administrator sets one
        assert not identity.check_password(clerk.password_hash, "")
        assert not identity.check_password(clerk.password_hash, clerk.password_hash)

    # the vice chair becomes chair of a commune's People's Committee: title, unit and rank update
    moved = [r[:] for r in USERS]
    moved[1][3:] = ["Chủ tịch", "000.77.02.H41", "Lãnh đạo", "1"]
    changed = await do_import(db, province_files(tmp_path, fmt, users=moved))
    assert [(c.action, c.key) for c in changed.changes] == [("update", "phochutich")]
    assert changed.changes[0].old == {"title": "Phó Chủ tịch", "unit": "000.00.00.H41", "rank": 2}
    assert "chức vụ: «Phó Chủ tịch» → «Chủ tịch»" in changed.changes[0].line()
    async with db.uow(readonly=True) as uow:
        vinh = await identity.get_user(uow, "phochutich")
        assert (vinh.title, vinh.rank) == ("Chủ tịch", 1)
        last = (await uow.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq.desc()))).first()
        assert last is not None and last.action == "user.update" and last.object_id == str(vinh.id)
        assert last.data["changes"]["title"] == ["Phó Chủ tịch", "Chủ tịch"]
        assert (await audit.verify(uow.session)).ok
    assert (await counts(db))[:2] == (len(UNITS), len(USERS))


async def test_dry_run_writes_nothing(db: Database, tmp_path: Path) -> None:
    plan = await do_import(db, province_files(tmp_path, "csv"), dry_run=True)
    assert plan.count("create") == len(UNITS) + len(USERS)
    assert "thêm đơn vị 000.00.00.H41 «Ủy ban nhân dân tỉnh Quảng Ninh»" in plan.changes[0].line()
    assert await counts(db) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_bad_parent_reported_by_row_and_column_nothing_written(db: Database, tmp_path: Path,
                                                                     fmt: str) -> None:
    units = [r[:] for r in UNITS]
    units[3][2] = "000.00.99.H41"  # line 5 of the sheet (the header is line 1)
    users = [r[:] for r in USERS]
    users[0][5] = "Thư ký"
    with pytest.raises(ImportRejected) as caught:
        await do_import(db, province_files(tmp_path, fmt, units=units, users=users))
    errors = caught.value.errors
    assert any("Dòng 5, cột «Đơn vị cha»: không có đơn vị mã «000.00.99.H41»" in e for e in errors), errors
    assert any("Dòng 2, cột «Vai trò»: vai trò «Thư ký» không rõ" in e for e in errors), errors
    assert len(errors) == 2
    assert await counts(db) == (0, 0, 0)  # the other rows were right, yet nothing is written


async def test_parent_cycle_and_duplicates_rejected(db: Database, tmp_path: Path) -> None:
    units = [["A.H41", "Đơn vị A", "B.H41", "Phòng", ""], ["B.H41", "Đơn vị B", "A.H41", "Phòng", ""],
             ["A.H41", "Đơn vị A lần hai", "", "Phòng", ""]]
    with pytest.raises(ImportRejected) as caught:
        await do_import(db, [write_csv(tmp_path / "vong.csv", UNIT_HEADER, units)])
    text = "\n".join(caught.value.errors)
    assert "vòng lặp" in text and "Dòng 4, cột «Mã đơn vị»: mã «A.H41» đã có ở dòng 2" in text


async def test_deactivate_missing_closes_account(db: Database, tmp_path: Path) -> None:
    await do_import(db, province_files(tmp_path, "csv"))
    async with db.uow() as uow:
        gone = await identity.get_user(uow, "giamdoc.snv")
        gone.password_hash = identity.hash_password("Mật-khẩu-2026")
        token = await identity.start_session(uow, gone, days=1)
        await uow.commit()
    left = [r for r in USERS if r[1] != "giamdoc.snv"]
    plan = await do_import(db, province_files(tmp_path, "csv", users=left), deactivate_missing=True)
    assert [(c.action, c.key) for c in plan.changes] == [("deactivate", "giamdoc.snv")]
    async with db.uow(readonly=True) as uow:
        user = await identity.get_user(uow, "giamdoc.snv")
        assert not user.active
        assert await identity.session_user(uow, token) is None  # the account-closing service ended the session
        actions = (await uow.session.scalars(select(audit.AuditEntry.action))).all()
        assert "user.deactivate" in actions
        assert (await identity.get_user(uow, "chutich")).active


def test_cli_dry_run_import_and_errors(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate").returncode == 0
    files = [str(p) for p in province_files(tmp_path, "csv")]
    dry = _run(tmp_path, "org", "import", *files, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Chạy thử, chưa ghi gì" in dry.stdout and "+ thêm tài khoản chutich «Trần Văn Hùng»" in dry.stdout
    assert "chutich" not in _run(tmp_path, "user", "list").stdout
    done = _run(tmp_path, "org", "import", *files)
    assert done.returncode == 0, done.stderr
    assert "thêm 11" in done.stdout and "chưa có mật khẩu" in done.stdout and "user passwd" in done.stdout
    assert "STT" not in done.stderr  # a row counter column is skipped quietly
    assert "Trần Văn Hùng" in _run(tmp_path, "user", "list").stdout
    assert "Không có gì thay đổi" in _run(tmp_path, "org", "import", *files).stdout
    bad = write_csv(tmp_path / "sai.csv", UNIT_HEADER, [["X.H41", "Phòng X", "KHONGCO", "Phòng", ""]])
    wrong = _run(tmp_path, "org", "import", str(bad))
    assert wrong.returncode == 2
    assert "sai.csv: Dòng 2, cột «Đơn vị cha»: không có đơn vị mã «KHONGCO»" in wrong.stderr
    assert "chưa ghi gì" in wrong.stderr


async def test_pickers_list_people_by_rank(db: Database, tmp_path: Path) -> None:
    """The handler and approver choices put the Chủ tịch first, then the Phó Chủ tịch, the unranked last."""
    from web.routes.office_common import agency_choices

    await do_import(db, province_files(tmp_path, "csv"))
    async with db.uow(readonly=True) as uow:
        clerk = await identity.get_user(uow, "vanthu.vp")
        choices = await agency_choices(uow, clerk)
        assert [p.username for p, _ in choices["people"]] == ["chutich", "phochutich", "vanthu.vp"]
        assert [p.username for p, _ in choices["leaders"]] == ["chutich", "phochutich"]
        codes = [u.code for u in choices["units"]]
        assert codes.index("000.00.01.H41") < codes.index("000.00.12.H41") < codes.index("000.77.02.H41")


def test_header_below_a_title_and_rows_numbered_as_shown(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["DANH SÁCH CÁN BỘ TỈNH QUẢNG NINH"])
    sheet.append([])
    sheet.append(["Ten dang nhap", "HỌ VÀ TÊN", "Ghi chú", "Ngày sinh"])  # (a phone number is read: for SMS)
    sheet.append(["chutich", "Trần Văn Hùng", "", "02/09/1975"])
    book.save(tmp_path / "can-bo.xlsx")
    (table,) = read_tables(tmp_path / "can-bo.xlsx")
    assert table.kind == "users" and table.skipped == ["Ngày sinh"]
    assert table.rows[0].line == 4 and table.rows[0].cells == {"username": "chutich", "full_name": "Trần Văn Hùng"}
    assert table.where(table.rows[0], "full_name") == "can-bo.xlsx «Sheet»: Dòng 4, cột «HỌ VÀ TÊN»"


async def test_phone_numbers_for_sms_are_imported_and_checked(db: Database, tmp_path: Path) -> None:
    await do_import(db, province_files(tmp_path, "csv"))
    username = USERS[0][1]
    header = ["Tên đăng nhập", "Số điện thoại"]
    with pytest.raises(ImportRejected) as caught:
        await do_import(db, [write_csv(tmp_path / "sai.csv", header, [[username, "gọi văn phòng"]])])
    assert caught.value.errors == ["sai.csv: Dòng 2, cột «Số điện thoại»: «gọi văn phòng» không phải số điện thoại."]
    await do_import(db, [write_csv(tmp_path / "dien-thoai.csv", header, [[username, "0912 345.678"]])])
    async with db.uow(readonly=True) as uow:
        user = await uow.session.scalar(select(User).where(User.username == username))
    assert user is not None and user.phone == "0912345678"
