"""Import of the organisation (units and accounts) from tables (``eoffice.org_tables``).

``plan_import`` compares the tables with the database and returns what would change, or raises
``ImportRejected`` with every wrong row (nothing is written then); ``apply_plan`` makes the changes in
the caller's transaction, each audited. Units are matched by code, people by username, so importing
the same file again changes nothing.

An empty cell keeps the current value (a new row gets the default): a file with only «Tên đăng nhập»
and «Chức vụ» updates titles and nothing else. New accounts get no usable password: an administrator
sets one (``eoffice user passwd``) before their first login.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from eoffice import accounts, audit
from eoffice.identity import require_admin
from eoffice.org import DEFAULT_RANK, ROLE_LABELS, UNIT_KIND_LABELS, Role, Unit, UnitKind, User
from eoffice.org_tables import UNITS, USERS, Row, Table
from eoffice.textfold import fold
from storage.db import UnitOfWork
from storage.errors import Invalid

NO_PASSWORD = "!imported"  # not an argon2 hash: no password ever matches it (identity.check_password)
_USERNAME = re.compile(r"^[a-z0-9._-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9]{8,15}$")  # for SMS of urgent notifications (eoffice.channels)

_KINDS: dict[str, str] = {fold(k.value): k.value for k in UnitKind} | {
    fold(label): k.value for k, label in UNIT_KIND_LABELS.items()} | {
    "ubnd tinh": "province", "so": "department", "ban": "department", "nganh": "department",
    "ubnd huyen": "district", "thi xa": "district", "ubnd xa": "commune", "phuong": "commune",
    "dac khu": "commune", "van phong": "office"}
_ROLES: dict[str, str] = {fold(r.value): r.value for r in Role} | {
    fold(label): r.value for r, label in ROLE_LABELS.items()} | {"quan tri": "admin"}
_YES, _NO = {"co", "x", "1", "true", "yes"}, {"khong", "0", "false", "no"}

FIELD_LABELS = {"name": "tên", "parent": "đơn vị cha", "kind": "loại", "is_agency": "cơ quan", "rank": "thứ tự",
                "full_name": "họ và tên", "title": "chức vụ", "unit": "đơn vị", "roles": "vai trò", "email": "email",
                "phone": "điện thoại", "username": "tên đăng nhập", "directory_id": "mã trong thư mục LDAP"}


def unit_kind(text: str) -> str | None:
    """The ``UnitKind`` value a kind written in Vietnamese or English means («Sở», «Xã», "commune"), None if unclear."""
    return _KINDS.get(fold(text))


def valid_username(name: str) -> bool:
    return bool(_USERNAME.match(name)) and len(name) <= 80


def valid_email(text: str) -> bool:
    return bool(_EMAIL.match(text)) and len(text) <= 200


class ImportRejected(Invalid):
    """The file has wrong rows: ``errors``, one message each (row and column in Vietnamese)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"Tệp có {len(errors)} lỗi; chưa ghi gì vào cơ sở dữ liệu.")
        self.errors = errors


@dataclass
class Change:
    action: str  # create | update | deactivate
    kind: str  # unit | user
    key: str  # unit code or username
    values: dict[str, Any] = field(default_factory=dict)  # create: every field; update: the new values
    old: dict[str, Any] = field(default_factory=dict)  # update: the values they replace

    def line(self) -> str:
        what = "đơn vị" if self.kind == "unit" else "tài khoản"
        if self.action == "create":
            name = self.values.get("name") or self.values.get("full_name")
            return f"+ thêm {what} {self.key} «{name}»"
        if self.action == "deactivate":
            return f"- khóa {what} {self.key}"
        diff = "; ".join(f"{FIELD_LABELS.get(k, k)}: «{_show(self.old.get(k))}» → «{_show(v)}»"
                         for k, v in self.values.items())
        return f"~ sửa {what} {self.key}: {diff}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, list):
        return ", ".join(value)
    return "" if value is None else str(value)


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        new_users = sum(1 for c in self.changes if c.action == "create" and c.kind == "user")
        units = sum(1 for c in self.changes if c.kind == "unit")
        return (f"thêm {self.count('create')}, sửa {self.count('update')}, khóa {self.count('deactivate')} "
                f"({units} thay đổi đơn vị, {new_users} tài khoản mới)")


def _rank(table: Table, row: Row, errors: list[str]) -> int | None:
    text = row.cells.get("rank", "")
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > 1_000_000:
        errors.append(f"{table.where(row, 'rank')}: «{text}» không phải số thứ tự (số nguyên không âm).")
        return None
    return int(text)


async def plan_import(uow: UnitOfWork, actor: User | None, tables: Sequence[Table], *,
                      deactivate_missing: bool = False) -> Plan:
    """What importing ``tables`` would change; ``ImportRejected`` listing every wrong row if any is wrong."""
    require_admin(actor)
    units = {u.code: u for u in (await uow.session.scalars(select(Unit))).all()}
    code_of = {u.id: u.code for u in units.values()}
    users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
    errors: list[str] = []
    plan = Plan()
    for t in tables:
        if t.skipped:
            plan.warnings.append(f"{t.source}: bỏ qua cột {', '.join(f'«{s}»' for s in t.skipped)}.")

    # ---- units -------------------------------------------------------------------------------
    seen: dict[str, str] = {}  # code -> where first listed
    parent_of: dict[str, str | None] = {c: code_of.get(u.parent_id) if u.parent_id else None
                                        for c, u in units.items()}
    unit_rows: list[tuple[Table, Row, str]] = []
    for t in (t for t in tables if t.kind == UNITS):
        for row in t.rows:
            code = row.cells["code"]
            if code in seen:
                errors.append(f"{t.where(row, 'code')}: mã «{code}» đã có ở {seen[code]}.")
                continue
            if len(code) > 40 or not code:
                errors.append(f"{t.where(row, 'code')}: " + ("cần mã đơn vị." if not code else
                                                                 "mã đơn vị dài quá 40 ký tự."))
                continue
            seen[code] = f"dòng {row.line}"
            unit_rows.append((t, row, code))
            if row.cells.get("parent"):
                parent_of[code] = row.cells["parent"]
            else:
                parent_of.setdefault(code, None)
    for t, row, code in unit_rows:
        c = row.cells
        unit = units.get(code)
        want: dict[str, Any] = {}
        if c.get("name"):
            if len(c["name"]) > 300:
                errors.append(f"{t.where(row, 'name')}: tên đơn vị dài quá 300 ký tự.")
            want["name"] = c["name"]
        elif unit is None:
            errors.append(f"{t.where(row, 'name')}: cần tên đơn vị cho đơn vị mới «{code}».")
        parent = c.get("parent", "")
        if parent:
            if parent == code:
                errors.append(f"{t.where(row, 'parent')}: đơn vị không thể là cha của chính nó.")
            elif parent not in parent_of:
                errors.append(f"{t.where(row, 'parent')}: không có đơn vị mã «{parent}» "
                              "(trong tệp hay trong cơ sở dữ liệu).")
            else:
                cursor, hops = parent_of.get(parent), 0
                while cursor is not None and cursor != code and hops < len(parent_of):
                    cursor, hops = parent_of.get(cursor), hops + 1
                if cursor == code:
                    errors.append(f"{t.where(row, 'parent')}: đơn vị «{parent}» lại thuộc «{code}» (vòng lặp).")
                want["parent"] = parent
        if c.get("kind"):
            kind = _KINDS.get(fold(c["kind"]))
            if kind is None:
                errors.append(f"{t.where(row, 'kind')}: loại «{c['kind']}» không rõ (dùng "
                              + ", ".join(f"«{v}»" for v in UNIT_KIND_LABELS.values()) + ").")
            else:
                want["kind"] = kind
        if c.get("agency"):
            flag = fold(c["agency"])
            if flag not in _YES | _NO:
                errors.append(f"{t.where(row, 'agency')}: ghi «có» hoặc «không», không phải «{c['agency']}».")
            else:
                want["is_agency"] = flag in _YES
        rank = _rank(t, row, errors)
        if rank is not None:
            want["rank"] = rank
        if unit is None:
            kind = want.setdefault("kind", UnitKind.OFFICE.value if want.get("parent") else UnitKind.PROVINCE.value)
            want.setdefault("is_agency", kind != UnitKind.OFFICE.value)
            want.setdefault("parent", None)
            want.setdefault("rank", DEFAULT_RANK)
            plan.changes.append(Change("create", "unit", code, want))
        else:
            current: dict[str, Any] = {
                "name": unit.name, "parent": code_of.get(unit.parent_id) if unit.parent_id else None,
                "kind": unit.kind, "is_agency": unit.is_agency, "rank": unit.rank}
            diff = {k: v for k, v in want.items() if current[k] != v}
            if diff:
                plan.changes.append(Change("update", "unit", code, diff, {k: current[k] for k in diff}))

    # parents before children: creations in order of depth
    def depth(code: str) -> int:
        n, cursor = 0, parent_of.get(code)
        while cursor is not None and n <= len(parent_of):
            n, cursor = n + 1, parent_of.get(cursor)
        return n

    if not errors:
        plan.changes.sort(key=lambda ch: (ch.action != "create", depth(ch.key) if ch.action == "create" else 0))

    # ---- users -------------------------------------------------------------------------------
    user_tables = [t for t in tables if t.kind == USERS]
    listed: dict[str, str] = {}
    for t in user_tables:
        for row in t.rows:
            c = row.cells
            username = c["username"].lower()
            if not valid_username(username):
                errors.append(f"{t.where(row, 'username')}: tên đăng nhập «{c['username']}» chỉ được gồm chữ "
                              "không dấu, số, dấu chấm, gạch dưới, gạch ngang (tối đa 80 ký tự).")
                continue
            if username in listed:
                errors.append(f"{t.where(row, 'username')}: «{username}» đã có ở {listed[username]}.")
                continue
            listed[username] = f"dòng {row.line}"
            user = users.get(username)
            want = {}
            if c.get("full_name"):
                if len(c["full_name"]) > 200:
                    errors.append(f"{t.where(row, 'full_name')}: họ và tên dài quá 200 ký tự.")
                want["full_name"] = c["full_name"]
            elif user is None:
                errors.append(f"{t.where(row, 'full_name')}: cần họ và tên cho tài khoản mới «{username}».")
            if c.get("title"):
                if len(c["title"]) > 200:
                    errors.append(f"{t.where(row, 'title')}: chức vụ dài quá 200 ký tự.")
                want["title"] = c["title"]
            if c.get("unit"):
                if c["unit"] not in parent_of:
                    errors.append(f"{t.where(row, 'unit')}: không có đơn vị mã «{c['unit']}» "
                                  "(trong tệp hay trong cơ sở dữ liệu).")
                want["unit"] = c["unit"]
            if c.get("roles"):
                names = [p for p in re.split(r"[,;/]", c["roles"]) if p.strip()]
                roles = [_ROLES.get(fold(p)) for p in names]
                if not names or None in roles:
                    bad = ", ".join(f"«{p.strip()}»" for p, r in zip(names, roles, strict=True) if r is None)
                    errors.append(f"{t.where(row, 'roles')}: vai trò {bad} không rõ (dùng "
                                  + ", ".join(f"«{v}»" for v in ROLE_LABELS.values()) + ").")
                else:
                    want["roles"] = sorted(set(roles), key=lambda r: list(_ROLES.values()).index(r))  # type: ignore[arg-type]
            if c.get("email"):
                if not valid_email(c["email"]):
                    errors.append(f"{t.where(row, 'email')}: «{c['email']}» không phải địa chỉ email.")
                want["email"] = c["email"]
            if c.get("phone"):
                phone = re.sub(r"[\s.()-]", "", c["phone"])
                if not _PHONE.match(phone):
                    errors.append(f"{t.where(row, 'phone')}: «{c['phone']}» không phải số điện thoại.")
                want["phone"] = phone
            rank = _rank(t, row, errors)
            if rank is not None:
                want["rank"] = rank
            if user is None:
                want.setdefault("title", "")
                want.setdefault("unit", None)
                want.setdefault("roles", [Role.SPECIALIST.value])
                want.setdefault("email", "")
                want.setdefault("phone", "")
                want.setdefault("rank", DEFAULT_RANK)
                plan.changes.append(Change("create", "user", username, want))
            else:
                current = {"full_name": user.full_name, "title": user.title, "email": user.email, "phone": user.phone,
                           "unit": code_of.get(user.unit_id) if user.unit_id else None,
                           "roles": list(user.roles), "rank": user.rank}
                diff = {k: v for k, v in want.items() if current[k] != v}
                if diff:
                    plan.changes.append(Change("update", "user", username, diff, {k: current[k] for k in diff}))

    if deactivate_missing:
        if not user_tables:
            errors.append("--deactivate-missing cần một bảng tài khoản (có cột «Tên đăng nhập») trong tệp.")
        for username, user in sorted(users.items()):
            if username in listed or not user.active:
                continue
            if user.is_admin:
                plan.warnings.append(f"Giữ tài khoản quản trị «{username}» dù không có trong tệp.")
                continue
            plan.changes.append(Change("deactivate", "user", username))
    if errors:
        raise ImportRejected(errors)
    return plan


async def apply_plan(uow: UnitOfWork, actor: User | None, plan: Plan, *,
                     progress: Callable[[int], None] | None = None, source: str = "import") -> list[accounts.Revoked]:
    """Make the changes of ``plan`` (from ``plan_import`` in this transaction), audited as coming from ``source``;
    returns the credentials that deactivations ended, for the caller to close their live sockets after commit."""
    require_admin(actor)
    units = {u.code: u for u in (await uow.session.scalars(select(Unit))).all()}
    users = {u.username: u for u in (await uow.session.scalars(select(User))).all()}
    entries: list[tuple[Any, str, dict[str, Any]]] = []  # (object, action, data): audited once ids are known
    revoked: list[accounts.Revoked] = []

    def unit_id(code: str | None) -> int | None:
        return units[code].id if code else None

    for done, ch in enumerate(plan.changes, 1):
        v = dict(ch.values)
        if ch.kind == "unit":
            if "parent" in v:
                v["parent_id"] = unit_id(v.pop("parent"))
            if ch.action == "create":
                unit = Unit(code=ch.key, **v)
                uow.session.add(unit)
                await uow.session.flush()  # its id, for the units and people below it
                units[ch.key] = unit
            else:
                unit = units[ch.key]
                for k, value in v.items():
                    setattr(unit, k, value)
            entries.append((unit, f"unit.{ch.action}", {"code": ch.key, "source": source,
                                                        "changes": _changes(ch)}))
        elif ch.action == "deactivate":
            r = await accounts.set_active(uow, actor, users[ch.key], False)
            if r is not None:
                revoked.append(r)
        else:
            if "unit" in v:
                v["unit_id"] = unit_id(v.pop("unit"))
            if ch.action == "create":
                user = User(username=ch.key, password_hash=NO_PASSWORD, **v)
                uow.session.add(user)
                users[ch.key] = user
            else:
                user = users[ch.key]
                for k, value in v.items():
                    setattr(user, k, value)
            entries.append((user, f"user.{ch.action}", {"username": ch.key, "source": source,
                                                        "changes": _changes(ch)}))
        if progress is not None:
            progress(done)
    await uow.session.flush()
    await audit.record_many(uow, [audit.Entry(actor, action, "unit" if isinstance(obj, Unit) else "user", obj.id,
                                              data=data) for obj, action, data in entries])
    return revoked


def _changes(ch: Change) -> dict[str, Any]:
    if ch.action == "create":
        return dict(ch.values)
    return {k: [ch.old.get(k), v] for k, v in ch.values.items()}
