"""Shared plumbing of the e-office pages: rendering, form parsing, names for ids, choices of people
and units. Page handlers call the eoffice services directly; nothing here decides who may do
what (the services do)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from eoffice import doctypes, registers
from eoffice.org import Role, Unit, User, open_units
from eoffice.schema.documents import STATUS_LABELS
from eoffice.schema.tasks import TASK_STATUS_LABELS
from storage.db import UnitOfWork, utcnow
from storage.errors import AppError, Invalid, NotFound
from web.inputs import path_id

URGENCY_LABELS = {str(k): v for k, v in doctypes.URGENCY_LABELS.items()}
CONFIDENTIALITY_LABELS = {str(k): v for k, v in doctypes.CONFIDENTIALITY_LABELS.items()}
DOC_STATUS_LABELS = {str(k): v for k, v in STATUS_LABELS.items()}
TASK_LABELS = {str(k): v for k, v in TASK_STATUS_LABELS.items()}
ROLE_IN_TASK = {"main": "Chủ trì", "collab": "Phối hợp"}
DEADLINE_LABELS = {"overdue": "Quá hạn", "due_soon": "Sắp đến hạn", "ok": "Trong hạn", "none": "Không có hạn",
                   "on_time": "Đúng hạn", "late": "Trễ hạn"}


def today() -> dt.date:
    return registers.local_date(utcnow())


def vn_date(value: Any, tz: str = "Asia/Ho_Chi_Minh") -> str:
    """dd/mm/yyyy of a date, a datetime (in the agency's time zone) or an ISO string."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(ZoneInfo(tz))
    return value.strftime("%d/%m/%Y")


def vn_datetime(value: Any, tz: str = "Asia/Ho_Chi_Minh") -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(ZoneInfo(tz)).strftime("%H:%M %d/%m/%Y")


def json_script(data: Any) -> str:
    """JSON safe inside <script type="application/json">."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    user: User | None = request.state.user
    base = {
        "fmt_date": vn_date, "fmt_datetime": vn_datetime, "urgency_labels": URGENCY_LABELS,
        "conf_labels": CONFIDENTIALITY_LABELS, "doc_status_labels": DOC_STATUS_LABELS, "task_labels": TASK_LABELS,
        "role_in_task": ROLE_IN_TASK, "deadline_labels": DEADLINE_LABELS, "doc_types": doctypes.DOC_TYPES,
        "doc_type_names": {t.code: t.name for t in doctypes.DOC_TYPES},
        "is_clerk": bool(user and user.has_role(Role.CLERK)),
        "is_leader": bool(user and user.has_role(Role.LEADER)),
        "section": "",
    }
    base.update(context)
    return request.app.state.templates.TemplateResponse(request, template, base, status_code=status_code)


# ---- form values --------------------------------------------------------------------------------

def text(form: FormData, key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


def opt_int(form: FormData | Any, key: str, label: str) -> int | None:
    raw = str(form.get(key, "") or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"«{label}» phải là số nguyên.", field=key) from None


def ints(form: FormData, key: str) -> list[int]:
    out = []
    for v in form.getlist(key):
        if isinstance(v, str) and v.strip().isdigit():
            out.append(int(v))
    return out


def opt_date(raw: Any, label: str, key: str = "") -> dt.date | None:
    raw = str(raw or "").strip()
    if not raw:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise Invalid(f"«{label}» phải là một ngày (dd/mm/yyyy).", field=key or label)


def target(value: str) -> dict[str, int] | None:
    """'user:12' / 'unit:3' from a select of people and units."""
    kind, _, ident = value.partition(":")
    if not ident.isdigit():
        return None
    if kind == "user":
        return {"user_id": int(ident)}
    if kind == "unit":
        return {"unit_id": int(ident)}
    return None


def targets(values: Iterable[Any]) -> list[dict[str, int]]:
    return [t for v in values if isinstance(v, str) and (t := target(v)) is not None]


# ---- names and choices --------------------------------------------------------------------------

async def names(uow: UnitOfWork, user_ids: Iterable[int | None] = (), unit_ids: Iterable[int | None] = ()
                ) -> tuple[dict[int, str], dict[int, str]]:
    uids = {i for i in user_ids if i is not None}
    nids = {i for i in unit_ids if i is not None}
    users = {u.id: u.full_name for u in (await uow.session.scalars(select(User).where(User.id.in_(uids))))} \
        if uids else {}
    units = {u.id: u.name for u in (await uow.session.scalars(select(Unit).where(Unit.id.in_(nids))))} \
        if nids else {}
    return users, units


async def agency_choices(uow: UnitOfWork, user: User) -> dict[str, Any]:
    """Units (every unit, agencies first in tree order) and the people of the user's agency, for
    assignment and submission selects. Empty when the user belongs to no agency."""
    try:
        agency = await registers.agency_of(uow, user.unit_id)
    except NotFound:
        return {"units": [], "people": [], "leaders": [], "agency": None}
    all_units = list((await uow.session.scalars(select(Unit).where(open_units()).order_by(Unit.rank, Unit.id))).all())
    children: dict[int | None, list[Unit]] = {}
    for u in all_units:
        children.setdefault(u.parent_id, []).append(u)
    inside, stack = set(), [agency.id]
    while stack:  # the agency and its own offices (a nested agency keeps its own people)
        n = stack.pop()
        inside.add(n)
        stack.extend(c.id for c in children.get(n, []) if not c.is_agency)
    people = list((await uow.session.scalars(
        select(User).where(User.unit_id.in_(inside), User.active.is_(True)).order_by(User.rank, User.full_name))).all())
    unit_names = {u.id: u.name for u in all_units}
    ordered: list[Unit] = []

    def walk(parent: int | None) -> None:
        for u in children.get(parent, []):
            ordered.append(u)
            walk(u.id)

    walk(None)
    return {
        "agency": agency,
        "units": ordered,
        "people": [(p, unit_names.get(p.unit_id or 0, "")) for p in people],
        "leaders": [(p, unit_names.get(p.unit_id or 0, "")) for p in people if p.has_role(Role.LEADER)],
    }


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def form_action(request: Request, fn: Any, on_error: Any, success_url: str) -> Response:
    """The pages' one way to act on a document: ``fn(uow, user, id, form)`` in one unit of work
    (text extraction it queued starts after the commit), then redirect; a refusal shows
    ``on_error(id, exc, form)``."""
    doc_id = path_id(request, "id")
    form = await request.form()
    try:
        async with request.app.state.db.uow() as uow:
            await fn(uow, request.state.user, doc_id, form)
            await uow.commit()
    except AppError as exc:
        return await on_error(doc_id, exc, form)
    return redirect(success_url.format(id=doc_id))
