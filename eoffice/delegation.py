"""Delegation of authority (ủy quyền): a leader away on mission lets a deputy act in their place for a period.

Scopes: ``direct`` (cho ý kiến chỉ đạo, giao xử lý văn bản đến submitted to the leader) and ``approve`` (duyệt,
ký dự thảo văn bản đi waiting for the leader). While a delegation is active (from ``starts_at`` until
``ends_at``, not revoked) the deputy:

* sees what the leader sees (``eoffice.access.viewer_for`` adds the leader's keys) and the leader's queue
  (documents submitted to them, drafts waiting for them);
* may act where the leader's turn is: ``acting_for`` is the one check, called by ``tasks.direct`` and
  ``outgoing`` (approve, return). The action is recorded as the deputy's, «thay mặt» the leader: in the audit
  entry (``on_behalf_of``) and on the record itself (``DirectionNote.on_behalf_of``, ``ApprovalStep.decided_by``).

It ends by itself at ``ends_at`` (nothing runs: every check compares with the time now); the leader (or an
administrator) may revoke it earlier. Only leaders delegate, to an active leader of the same agency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.sql.elements import ColumnElement

from eoffice import audit, registers
from eoffice.org import Role, User
from eoffice.schema.delegations import Delegation
from storage.db import UnitOfWork, utcnow
from storage.errors import Conflict, Forbidden, Invalid, NotFound

DIRECT, APPROVE = "direct", "approve"
SCOPES = {DIRECT: "Chỉ đạo, giao xử lý văn bản đến", APPROVE: "Duyệt, ký văn bản đi"}
MAX_DAYS = 366


def on_behalf_label(deputy: User, principal: User) -> str:
    """«Phó Chủ tịch UBND tỉnh Lê Minh Tuấn thay mặt Chủ tịch UBND tỉnh Trần Văn Hùng»."""

    def who(u: User) -> str:
        return f"{u.title} {u.full_name}".strip()

    return f"{who(deputy)} thay mặt {who(principal)}"


def _active(now: dt.datetime) -> list[ColumnElement[bool]]:
    return [Delegation.revoked_at.is_(None), Delegation.starts_at <= now, Delegation.ends_at > now]


async def principals(
    uow: UnitOfWork, user: User, scope: str | None = None, now: dt.datetime | None = None
) -> list[int]:
    """The leaders for whom ``user`` may act now (in ``scope``, or any)."""
    rows = (
        await uow.session.scalars(
            select(Delegation)
            .where(Delegation.to_user_id == user.id, *_active(now or utcnow()))
            .order_by(Delegation.id)
        )
    ).all()
    return list(dict.fromkeys(d.from_user_id for d in rows if scope is None or scope in d.scopes))


async def acting_for(
    uow: UnitOfWork, actor: User, owner_ids: Iterable[int | None], scope: str, refusal: str
) -> int | None:
    """The one check of acting in someone's place. ``owner_ids``: whose turn it is. None when the actor is
    one of them (acting as themselves); the owner's id when the actor holds an active delegation of
    ``scope`` from them; Forbidden(``refusal``) otherwise."""
    owners = [o for o in dict.fromkeys(owner_ids) if o is not None]
    if actor.id in owners:
        return None
    mine = await principals(uow, actor, scope)
    found = next((o for o in owners if o in mine), None)
    if found is None:
        raise Forbidden(refusal)
    return found


async def labels(uow: UnitOfWork, pairs: Iterable[tuple[int | None, int | None]]) -> dict[tuple[int, int], str]:
    """(deputy id, principal id) -> «… thay mặt …», for history lines of actions taken under a delegation."""
    wanted = {(d, p) for d, p in pairs if d is not None and p is not None}
    ids = {i for pair in wanted for i in pair}
    people = {u.id: u for u in (await uow.session.scalars(select(User).where(User.id.in_(ids)))).all()} if ids else {}
    return {(d, p): on_behalf_label(people[d], people[p]) for d, p in wanted if d in people and p in people}


async def audit_fields(uow: UnitOfWork, actor: User, principal_id: int | None) -> dict[str, str]:
    """What an action taken under a delegation adds to its audit entry (nothing otherwise)."""
    if principal_id is None:
        return {}
    principal = await uow.session.get(User, principal_id)
    if principal is None:
        return {}
    return {"on_behalf_of": principal.username, "on_behalf_label": on_behalf_label(actor, principal)}


async def create(
    uow: UnitOfWork,
    actor: User,
    *,
    to_user_id: int,
    scopes: Sequence[str],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    note: str = "",
    from_user_id: int | None = None,
) -> Delegation:
    """A leader delegates to a deputy (an administrator may record it for a leader: ``from_user_id``)."""
    principal = actor
    if from_user_id is not None and from_user_id != actor.id:
        if not actor.is_admin:
            raise Forbidden("Chỉ người ủy quyền (hoặc quản trị hệ thống) được lập ủy quyền.")
        found = await uow.session.get(User, from_user_id)
        if found is None:
            raise NotFound("Không tìm thấy người ủy quyền.", field="from_user_id")
        principal = found
    if not principal.has_role(Role.LEADER):
        raise Forbidden("Chỉ lãnh đạo được ủy quyền chỉ đạo, duyệt văn bản.")
    chosen = [s for s in dict.fromkeys(scopes)]
    if not chosen or any(s not in SCOPES for s in chosen):
        raise Invalid("Chọn phạm vi ủy quyền: " + ", ".join(f"«{v}»" for v in SCOPES.values()) + ".", field="scopes")
    deputy = await uow.session.get(User, to_user_id)
    if deputy is None or not deputy.active or not deputy.has_role(Role.LEADER):
        raise Invalid("Người được ủy quyền phải là lãnh đạo đang làm việc.", field="to_user_id")
    if deputy.id == principal.id:
        raise Invalid("Không tự ủy quyền cho chính mình.", field="to_user_id")
    try:
        same = (await registers.agency_of(uow, deputy.unit_id)).id == (
            await registers.agency_of(uow, principal.unit_id)
        ).id
    except NotFound:
        same = False
    if not same:
        raise Invalid("Chỉ ủy quyền cho lãnh đạo cùng cơ quan.", field="to_user_id")
    if ends_at <= starts_at:
        raise Invalid("Thời điểm kết thúc phải sau thời điểm bắt đầu.", field="ends_at")
    if ends_at <= utcnow():
        raise Invalid("Thời điểm kết thúc đã qua.", field="ends_at")
    if ends_at - starts_at > dt.timedelta(days=MAX_DAYS):
        raise Invalid(f"Ủy quyền tối đa {MAX_DAYS} ngày.", field="ends_at")
    d = Delegation(
        from_user_id=principal.id,
        to_user_id=deputy.id,
        scopes=chosen,
        starts_at=starts_at,
        ends_at=ends_at,
        note=note.strip()[:2000],
        created_by=actor.id,
    )
    uow.session.add(d)
    await uow.session.flush()
    await audit.record(
        uow,
        actor,
        "delegation.create",
        "delegation",
        d.id,
        from_user=principal.username,
        to_user=deputy.username,
        scopes=chosen,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    uow.emit(f"user:{deputy.id}", "delegation.created", delegation_id=d.id)
    return d


async def revoke(uow: UnitOfWork, actor: User, delegation_id: int) -> Delegation:
    d = await uow.session.get(Delegation, delegation_id)
    if d is None or not (actor.is_admin or actor.id in (d.from_user_id, d.created_by)):
        raise NotFound("Không tìm thấy ủy quyền.")
    if d.revoked_at is not None:
        raise Conflict("Ủy quyền đã được thu hồi.")
    d.revoked_at, d.revoked_by = utcnow(), actor.id
    await audit.record(uow, actor, "delegation.revoke", "delegation", d.id)
    uow.emit(f"user:{d.to_user_id}", "delegation.revoked", delegation_id=d.id)
    return d


async def mine(uow: UnitOfWork, actor: User) -> list[Delegation]:
    """Delegations the actor gave or received, newest first."""
    return list(
        (
            await uow.session.scalars(
                select(Delegation)
                .where(or_(Delegation.from_user_id == actor.id, Delegation.to_user_id == actor.id))
                .order_by(Delegation.id.desc())
                .limit(200)
            )
        ).all()
    )
