"""Keeping units and accounts in step with the LDAP directory (``eoffice.directory``), through the organisation
import (``eoffice.org_import``): the directory becomes the import's tables, so a sync is planned, shown (dry run),
applied and audited exactly as an import is, and a second sync changes nothing.

Units and accounts are linked by their stable directory id (``directory_id``): a unit keeps the code it was given
here when its name changes there; an account's username follows the directory's. An existing unit or account
with the code or username the directory would give is adopted (linked) rather than duplicated. An account whose
entry is disabled (``EOFFICE_LDAP_DISABLED_FILTER``) or gone from the directory is deactivated: its sessions and
API tokens end (``accounts.set_active``) and the caller closes its live sockets. A directory that lists no one
deactivates no one (a wrong base DN is not a reason to lock out the province). Accounts are never reactivated
by a sync: an administrator decides (``eoffice user activate``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from sqlalchemy import select

from eoffice import accounts, directory
from eoffice.org import Unit, UnitKind, User
from eoffice.org_import import Change, Plan, apply_plan, plan_import, unit_kind, valid_email, valid_username
from eoffice.org_tables import UNITS, USERS, Row, Table
from eoffice.textfold import fold
from storage.background import BackgroundTask
from storage.db import Database, UnitOfWork

log = logging.getLogger(__name__)
SOURCE = "directory"  # the audit entries' "source"
_NAME_KINDS = [
    ("uy ban nhan dan tinh", UnitKind.PROVINCE),
    ("ubnd tinh", UnitKind.PROVINCE),
    ("so ", UnitKind.DEPARTMENT),
    ("ban ", UnitKind.DEPARTMENT),
    ("huyen ", UnitKind.DISTRICT),
    ("thi xa ", UnitKind.DISTRICT),
    ("thanh pho ", UnitKind.DISTRICT),
    ("xa ", UnitKind.COMMUNE),
    ("phuong ", UnitKind.COMMUNE),
    ("thi tran ", UnitKind.COMMUNE),
    ("dac khu ", UnitKind.COMMUNE),
]


def _kind(unit: directory.DirUnit) -> str:
    """The kind attribute if it is clear, else from the name («Sở Y tế», «Xã Bình Khê»), else by position."""
    if unit.kind and (kind := unit_kind(unit.kind)):
        return kind
    name = fold(unit.name)
    for prefix, k in _NAME_KINDS:
        if name.startswith(prefix):
            return k.value
    return (UnitKind.OFFICE if unit.parent_id else UnitKind.PROVINCE).value


def _slug(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", fold(name).upper()).strip("-")[:36] or "DV"


async def plan_sync(uow: UnitOfWork, snap: directory.Snapshot) -> Plan:
    """What making the database match ``snap`` would change (nothing is written)."""
    units = list((await uow.session.scalars(select(Unit))).all())
    users = list((await uow.session.scalars(select(User))).all())
    unit_by_id = {u.directory_id: u for u in units if u.directory_id}
    unit_by_code = {u.code: u for u in units}
    user_by_id = {u.directory_id: u for u in users if u.directory_id}
    user_by_name = {u.username: u for u in users}
    links: list[Change] = []
    warnings: list[str] = []

    # ---- units: a code for each (kept if linked, else the directory's or one made from the name) ------------
    code_of: dict[str, str] = {}
    taken = set(unit_by_code)
    for d in snap.units:
        if d.id in unit_by_id:
            code_of[d.id] = unit_by_id[d.id].code
            continue
        wanted = (d.code or _slug(d.name))[:40]
        known = unit_by_code.get(wanted)
        if known is not None and known.directory_id is None and wanted not in code_of.values():
            links.append(Change("update", "unit", wanted, {"directory_id": d.id}, {"directory_id": None}))
            code_of[d.id] = wanted
            continue
        code, n = wanted, 1
        while code in taken:
            n += 1
            code = f"{wanted[:36]}-{n}"
        taken.add(code)
        code_of[d.id] = code
    unit_rows = [
        Row(
            i,
            {
                "code": code_of[d.id],
                "name": d.name[:300],
                "kind": _kind(d),
                "parent": code_of.get(d.parent_id, "") if d.parent_id else "",
            },
        )
        for i, d in enumerate(snap.units, 2)
    ]

    # ---- people: enabled ones become rows (under the username they have here when linked) ----------------
    user_rows: list[Row] = []
    renames: list[Change] = []
    seen: set[str] = set()
    usernames: set[str] = set()
    for i, p in enumerate(snap.people, 2):
        seen.add(p.id)
        user = user_by_id.get(p.id)
        if p.disabled or not p.username:
            continue
        if not valid_username(p.username):
            warnings.append(f"Bỏ qua «{p.dn}»: tên đăng nhập «{p.username}» có ký tự không dùng được.")
            continue
        if p.username in usernames:
            warnings.append(f"Bỏ qua «{p.dn}»: tên đăng nhập «{p.username}» trùng với một mục khác của thư mục.")
            continue
        usernames.add(p.username)
        if user is None:
            user = user_by_name.get(p.username)
            if user is not None and user.directory_id is not None:
                warnings.append(f"Bỏ qua «{p.dn}»: «{p.username}» đã gắn với một mục khác của thư mục.")
                continue
            if user is not None:
                links.append(Change("update", "user", user.username, {"directory_id": p.id}, {"directory_id": None}))
        elif user.username != p.username:
            if p.username in user_by_name or p.username in {r.values["username"] for r in renames}:
                warnings.append(f"Không đổi «{user.username}» thành «{p.username}»: tên này đã có người dùng.")
            else:
                renames.append(
                    Change("update", "user", user.username, {"username": p.username}, {"username": user.username})
                )
        email = p.email if valid_email(p.email) else ""
        user_rows.append(
            Row(
                i,
                {
                    "username": user.username if user is not None else p.username,
                    "full_name": p.full_name[:200] or p.username,
                    "title": p.title[:200],
                    "unit": code_of.get(p.unit_id, "") if p.unit_id else "",
                    "email": email,
                },
            )
        )
    tables = [Table(SOURCE, UNITS, {}, unit_rows), Table(SOURCE, USERS, {}, user_rows)]
    plan = await plan_import(uow, None, tables)
    plan.warnings.extend(warnings)
    new_ids = {("unit", code_of[d.id]): d.id for d in snap.units} | {("user", p.username): p.id for p in snap.people}
    for ch in plan.changes:
        if ch.action == "create":
            ch.values["directory_id"] = new_ids[(ch.kind, ch.key)]
    plan.changes.extend(links + renames)

    # ---- deactivations: disabled there, or gone ------------------------------------------------------------
    disabled = {p.id for p in snap.people if p.disabled}
    for user in users:
        if not user.directory_id or not user.active:
            if user.directory_id and not user.active and user.directory_id in seen - disabled:
                plan.warnings.append(
                    f"«{user.username}» được bật trong thư mục nhưng đang bị khóa ở đây "
                    "(quản trị viên mở khóa bằng «eoffice user activate»)."
                )
            continue
        if user.directory_id in disabled or (snap.people and user.directory_id not in seen):
            plan.changes.append(Change("deactivate", "user", user.username))
    if not snap.people:
        plan.warnings.append("Thư mục không trả về người nào: không khóa tài khoản nào (kiểm tra EOFFICE_LDAP_*).")
    return plan


Closer = Callable[[accounts.Revoked], Awaitable[None]]


@dataclass
class Result:
    plan: Plan
    applied: bool


async def sync(
    db: Database,
    config: directory.DirectoryConfig,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    close: Closer | None = None,
) -> Result:
    """Read the directory (in a thread), plan, and unless ``dry_run`` apply and commit; then ``close`` the live
    sockets of the accounts that were deactivated. ``progress(done, total)`` while applying."""
    snap = await anyio.to_thread.run_sync(directory.read, config)
    async with db.uow() as uow:
        plan = await plan_sync(uow, snap)
        if dry_run or not plan.changes:
            return Result(plan, False)
        total = len(plan.changes)
        revoked = await apply_plan(
            uow, None, plan, source=SOURCE, progress=(lambda done: progress(done, total)) if progress else None
        )
        await uow.commit()
    if close is not None:
        for r in revoked:
            await close(r)
    return Result(plan, True)


class DirectorySync:
    """Runs ``sync`` every ``every`` seconds inside the server (and once at start)."""

    def __init__(self, db: Database, config: directory.DirectoryConfig, every: float, close: Closer | None) -> None:
        self.db, self.config, self.every, self.close = db, config, every, close
        self._task = BackgroundTask("directory-sync")

    def start(self) -> None:
        self._task.ensure(self._run)

    async def stop(self) -> None:
        await self._task.stop()

    async def tick(self) -> Result:
        result = await sync(self.db, self.config, close=self.close)
        if result.applied:
            log.info("directory sync: %s", result.plan.summary())
        for warning in result.plan.warnings:
            log.warning("directory sync: %s", warning)
        return result

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("directory sync failed; trying again later")
            await asyncio.sleep(self.every)
