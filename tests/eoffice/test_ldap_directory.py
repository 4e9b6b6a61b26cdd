"""Directory sync against a real OpenLDAP slapd (tests/ldap_server.py): the province's tree is created, a second
sync changes nothing, renames there rename here, disabled or removed people are deactivated, a dry run writes
nothing and says what it would do (the `eoffice directory sync` command)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ldap3
import pytest
from sqlalchemy import func, select

from eoffice import audit, directory, directory_sync, identity
from eoffice.org import Unit, User
from eoffice.org_import import NO_PASSWORD
from eoffice.schema.identity import LoginAttempt
from storage.db import Database
from storage.errors import Unauthenticated
from storage.settings import Settings
from tests.eoffice.test_cli import EOFFICE
from tests.ldap_server import (
    BASE,
    PEOPLE,
    PERSON_PW,
    PROVINCE,
    SERVICE_DN,
    SERVICE_PW,
    UNITS,
    Slapd,
    running_slapd,
)

ENABLED = sum(1 for p in PEOPLE if not p[4])


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    with running_slapd(tmp_path) as server:
        yield server


def ldap_settings(settings: Settings, server: Slapd) -> Settings:
    return replace(
        settings,
        ldap_url=server.url,
        ldap_base_dn=BASE,
        ldap_bind_dn=SERVICE_DN,
        ldap_bind_password=SERVICE_PW,
        ldap_sync_seconds=0,
    )


@pytest.fixture
def config(settings: Settings, slapd: Slapd) -> directory.DirectoryConfig:
    found = directory.DirectoryConfig.from_settings(ldap_settings(settings, slapd))
    assert found is not None
    return found


async def state(db: Database) -> dict[str, tuple[object, ...]]:
    """Every unit and account as (kind, name, parent or unit code, title, email, active, directory id)."""
    async with db.uow(readonly=True) as uow:
        units = (await uow.session.scalars(select(Unit))).all()
        code = {u.id: u.code for u in units}
        out: dict[str, tuple[object, ...]] = {
            f"unit:{u.code}": (u.kind, u.name, code.get(u.parent_id or 0), u.directory_id) for u in units
        }
        for p in (await uow.session.scalars(select(User))).all():
            out[f"user:{p.username}"] = (
                p.full_name,
                code.get(p.unit_id or 0),
                p.title,
                p.email,
                p.active,
                p.directory_id,
                p.password_hash,
            )
        return out


async def audit_count(db: Database) -> int:
    async with db.uow(readonly=True) as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(audit.AuditEntry)) or 0)


async def by_name(db: Database, name: str) -> Unit:
    async with db.uow(readonly=True) as uow:
        unit = await uow.session.scalar(select(Unit).where(Unit.name == name))
        assert unit is not None, name
        return unit


async def test_sync_creates_the_tree_and_a_second_sync_changes_nothing(
    db: Database, config: directory.DirectoryConfig
) -> None:
    first = await directory_sync.sync(db, config)
    assert first.applied and first.plan.count("create") == len(UNITS) + ENABLED
    after = await state(db)
    assert sum(k.startswith("unit:") for k in after) == len(UNITS)
    assert sum(k.startswith("user:") for k in after) == ENABLED  # the disabled person is not created
    province = await by_name(db, PROVINCE)
    assert province.kind == "province" and province.parent_id is None and province.directory_id
    kinds = {name: (await by_name(db, name)).kind for name, _, _ in UNITS}
    assert kinds["Sở Y tế"] == "department" and kinds["Thị xã Đông Triều"] == "district"
    assert kinds["Xã Bình Khê"] == kinds["Đặc khu Vân Đồn"] == "commune"
    towns = await by_name(db, "Thị xã Đông Triều")
    assert (await by_name(db, "Xã Bình Khê")).parent_id == towns.id  # the old shape: under a town
    assert (await by_name(db, "Xã Tiên Yên")).parent_id == province.id  # since 2025-07-01: under the province
    snv = await by_name(db, "Sở Nội vụ")
    name, unit, title, email, active, directory_id, password_hash = after["user:giamdoc.snv"]
    assert (name, unit, title, email, active) == (
        "Phạm Thu Hà",
        snv.code,
        "Giám đốc",
        "giamdoc.snv@quangninh.gov.vn",
        True,
    )
    assert directory_id and password_hash == NO_PASSWORD  # logs in by a bind, never with a password kept here
    assert "user:nghihuu.snv" not in after
    entries = await audit_count(db)

    again = await directory_sync.sync(db, config)
    assert again.plan.changes == [] and not again.applied
    assert await state(db) == after and await audit_count(db) == entries


async def test_renames_in_the_directory_rename_here(
    db: Database, config: directory.DirectoryConfig, slapd: Slapd
) -> None:
    await directory_sync.sync(db, config)
    before = await by_name(db, "Sở Y tế")
    person = (await state(db))["user:bacsi.syt"]
    admin = slapd.admin()
    admin.modify_dn(slapd.unit_dn("Sở Y tế"), "ou=Sở Y tế và Dân số")  # its people's DNs change with it
    new_dn = f"ou=Sở Y tế và Dân số,ou={PROVINCE},{BASE}"
    admin.modify(f"uid=bacsi.syt,{new_dn}", {"cn": [(ldap3.MODIFY_REPLACE, ["Bùi Thị Ngọc Anh"])]})
    admin.modify_dn(f"uid=giamdoc.syt,{new_dn}", "uid=giamdoc.syt.moi")  # a new username (the old uid goes)
    admin.unbind()

    result = await directory_sync.sync(db, config)
    lines = [c.line() for c in result.plan.changes]
    assert len(lines) == 3, lines
    after = await by_name(db, "Sở Y tế và Dân số")
    assert (after.id, after.code, after.directory_id) == (before.id, before.code, before.directory_id)
    now = await state(db)
    assert now["user:bacsi.syt"][0] == "Bùi Thị Ngọc Anh" and now["user:bacsi.syt"][5] == person[5]
    assert "user:giamdoc.syt" not in now and now["user:giamdoc.syt.moi"][1] == before.code
    async with db.uow(readonly=True) as uow:
        entries = (
            await uow.session.scalars(
                select(audit.AuditEntry).where(audit.AuditEntry.action.in_(["unit.update", "user.update"]))
            )
        ).all()
    assert {e.data["source"] for e in entries} == {"directory"}
    assert (await directory_sync.sync(db, config)).plan.changes == []


async def test_disabled_or_removed_in_the_directory_is_deactivated_here(
    db: Database, settings: Settings, config: directory.DirectoryConfig, slapd: Slapd
) -> None:
    await directory_sync.sync(db, config)
    async with db.uow() as uow:  # a session and an API token that must stop working
        user = await identity.get_user(uow, "ketoan.stc")
        session = await identity.start_session(uow, user, 7)
        token = await identity.create_token(uow, None, user)
        await uow.commit()
    admin = slapd.admin()
    admin.modify(
        f"uid=ketoan.stc,{slapd.unit_dn('Sở Tài chính')}", {"employeeType": [(ldap3.MODIFY_ADD, ["disabled"])]}
    )
    admin.delete(f"uid=congchuc.vandon,{slapd.unit_dn('Đặc khu Vân Đồn')}")
    admin.unbind()
    closed: list[int] = []

    async def close(revoked: object) -> None:
        closed.append(revoked.user_id)  # type: ignore[attr-defined]

    result = await directory_sync.sync(db, config, close=close)
    assert sorted(c.line() for c in result.plan.changes) == [
        "- khóa tài khoản congchuc.vandon",
        "- khóa tài khoản ketoan.stc",
    ]
    now = await state(db)
    assert now["user:ketoan.stc"][4] is False and now["user:congchuc.vandon"][4] is False
    async with db.uow(readonly=True) as uow:
        assert await identity.session_user(uow, session) is None
        assert (await identity.token_lookup(uow, token))[0] is None
        assert sorted(closed) == sorted(
            [(await identity.get_user(uow, n)).id for n in ("ketoan.stc", "congchuc.vandon")]
        )
    assert (await directory_sync.sync(db, config)).plan.changes == []  # already deactivated: nothing to do


async def test_a_local_account_is_adopted_and_a_bad_directory_is_not_a_lockout(
    db: Database, config: directory.DirectoryConfig
) -> None:
    async with db.uow() as uow:
        await identity.create_user(uow, None, username="chutich", full_name="Trần Hùng", password="Mat-khau-2026")
        await uow.commit()
    result = await directory_sync.sync(db, config)
    lines = [c.line() for c in result.plan.changes]
    assert any(
        line.startswith("~ sửa tài khoản chutich: họ và tên: «Trần Hùng» → «Trần Văn Hùng»") for line in lines
    ), lines
    assert "~ sửa tài khoản chutich: mã trong thư mục LDAP: «» → «" in "\n".join(lines)
    now = await state(db)
    assert now["user:chutich"][5] and sum(k.startswith("user:") for k in now) == ENABLED  # linked, not doubled
    empty = replace(config, base_dn=f"ou=Không có,{BASE}")  # a wrong base DN: no one there
    with pytest.raises(directory.DirectoryUnavailable):
        await directory_sync.sync(db, empty)  # no such object: an error, not an empty directory
    nobody = replace(config, user_filter="(objectClass=posixAccount)")
    result = await directory_sync.sync(db, nobody)
    assert not [c for c in result.plan.changes if c.action == "deactivate"]
    assert any("không khóa tài khoản nào" in w for w in result.plan.warnings)


def _cli(tmp_path: Path, server: Slapd, *args: str) -> tuple[int, str, str]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("EOFFICE_")}
    env |= {
        "EOFFICE_VAR_DIR": str(tmp_path / "var"),
        "EOFFICE_LDAP_URL": server.url,
        "EOFFICE_LDAP_BASE_DN": BASE,
        "EOFFICE_LDAP_BIND_DN": SERVICE_DN,
        "EOFFICE_LDAP_BIND_PASSWORD": SERVICE_PW,
    }
    done = subprocess.run([EOFFICE, *args], env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_cli_dry_run_changes_nothing_and_reports_then_sync(tmp_path: Path, slapd: Slapd) -> None:
    assert _cli(tmp_path, slapd, "migrate")[0] == 0
    code, out, err = _cli(tmp_path, slapd, "directory", "sync", "--dry-run")
    assert code == 0, err
    assert f"+ thêm đơn vị UY-BAN-NHAN-DAN-TINH-QUANG-NINH «{PROVINCE}»" in out
    assert "+ thêm tài khoản giamdoc.snv «Phạm Thu Hà»" in out and "nghihuu.snv" not in out
    assert f"Chạy thử, chưa ghi gì: sẽ thêm {len(UNITS) + ENABLED}," in out
    code, out, err = _cli(tmp_path, slapd, "directory", "sync")
    assert code == 0, err
    assert f"Đã thêm {len(UNITS) + ENABLED}," in out
    assert f"Đồng bộ thư mục [{'#' * 30}] {len(UNITS) + ENABLED}/{len(UNITS) + ENABLED}" in err  # the progress bar
    code, out, err = _cli(tmp_path, slapd, "directory", "sync", "--dry-run")
    assert code == 0 and "Chạy thử: không có gì thay đổi." in out
    code, out, err = _cli(tmp_path, slapd, "directory", "sync")
    assert code == 0 and "Không có gì thay đổi." in out


def test_cli_without_a_directory_says_how(tmp_path: Path) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("EOFFICE_")} | {
        "EOFFICE_VAR_DIR": str(tmp_path / "var")
    }
    done = subprocess.run([EOFFICE, "directory", "sync"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "EOFFICE_LDAP_URL" in done.stderr


async def test_login_all_binds_local_accounts_and_a_silent_directory_decides_nothing(
    db: Database, config: directory.DirectoryConfig, slapd: Slapd
) -> None:
    async with db.uow() as uow:  # a local account (not linked: no sync ran) named as a directory person
        await identity.create_user(uow, None, username="chutich", full_name="Trần Văn Hùng", password="Mat-khau-2026")
        await uow.commit()
    async with db.uow() as uow:
        with pytest.raises(Unauthenticated):  # "directory": a local account logs in with its local password only
            await identity.authenticate(uow, "chutich", PERSON_PW, "10.0.0.1", directory_config=config)
    everyone = replace(config, login="all")
    async with db.uow() as uow:
        user = await identity.authenticate(uow, "chutich", PERSON_PW, "10.0.0.1", directory_config=everyone)
        assert user.username == "chutich"
    async with db.uow() as uow:  # its local password still works
        await identity.authenticate(uow, "chutich", "Mat-khau-2026", "10.0.0.1", directory_config=everyone)
    slapd.process.terminate()
    slapd.process.wait(10)
    async with db.uow() as uow:
        with pytest.raises(directory.DirectoryUnavailable):
            await identity.authenticate(uow, "chutich", "Sai-mat-khau-1", "10.0.0.1", directory_config=everyone)
    async with db.uow(readonly=True) as uow:  # not counted as a failure: nothing was decided
        failures = await uow.session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.success.is_(False), LoginAttempt.username == "chutich")
        )
    assert failures == 1  # the one refused under "directory" above
