"""Who may see a document: one rule, as a pure function and as the SQL filter every listing uses.

A user sees a document when the flow gave them a grant on it: they registered it, it was
submitted to them, they directed it, a task on it was assigned to them or passed down to them,
they were informed (để biết), they drafted or approved it, or it was delivered to their agency.
A grant is either for a user or for a unit; a unit grant reaches the unit's leaders (the head and
deputies, who pass work down) and, for an agency, the agency's clerks (who keep its registers).

Besides grants, a clerk sees the ordinary (non-confidential) registered documents of the agency
whose registers they keep, and its approved drafts waiting for a number.

A deputy holding an active delegation (ủy quyền, ``eoffice.delegation``) sees, while it lasts, what the
leader they act for sees: the leader's user grants are theirs (``Viewer.principals``).

Roles give nothing else. In particular an administrator manages accounts and units and does
**not** read documents (confidential or not) by virtue of being an administrator; an admin who
also works in the flow sees what the flow gave them. Confidential documents are reached only
through grants: never through the clerk's register rule, so they cannot leak through lists,
search, thumbnails, exports, statistics details or the API.

The rule is written as keys (``reader_keys`` of a document meet ``viewer_keys`` of a user).
PostgreSQL search reads a copy of the reader keys stored in the search vector: a service that
gives a grant (``grant`` below) or changes a field the rule reads tells ``eoffice.search.keys_changed``
on its unit of work, which rewrites them in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.sql.elements import ColumnElement

from eoffice import delegation
from eoffice.org import Role, User
from eoffice.registers import agency_of
from eoffice.schema.documents import Document, Grant, Status
from storage.db import UnitOfWork
from storage.errors import NotFound


@dataclass(frozen=True)
class Viewer:
    """What the access rule needs to know about a user, computed once per request."""

    user_id: int
    unit_ids: frozenset[int] = field(default_factory=frozenset)  # unit grants that reach them
    register_agency_id: int | None = None  # clerks: the agency whose registers they keep
    principals: frozenset[int] = field(default_factory=frozenset)  # leaders they act for now (eoffice.delegation)


@dataclass(frozen=True)
class DocFacts:
    agency_id: int
    confidential: bool
    registered: bool  # has a number in a register, or is approved and waiting for one
    grants: tuple[tuple[int | None, int | None], ...]  # (user_id, unit_id)


def reader_keys(doc: DocFacts) -> frozenset[str]:
    """Who may read the document, as keys: ``u:<user>`` and ``g:<unit>`` for its grants, and
    ``r:<agency>`` when it is an ordinary registered document of that agency (the clerk's rule)."""
    keys = {f"u:{u}" for u, _ in doc.grants if u is not None} | {f"g:{g}" for _, g in doc.grants if g is not None}
    if not doc.confidential and doc.registered:
        keys.add(f"r:{doc.agency_id}")
    return frozenset(keys)


def viewer_keys(viewer: Viewer) -> frozenset[str]:
    """The keys that open a document for this viewer (same vocabulary as ``reader_keys``)."""
    keys = {f"u:{u}" for u in {viewer.user_id, *viewer.principals}} | {f"g:{u}" for u in viewer.unit_ids}
    if viewer.register_agency_id is not None:
        keys.add(f"r:{viewer.register_agency_id}")
    return frozenset(keys)


def can_see(viewer: Viewer, doc: DocFacts) -> bool:
    """The rule: a key of the viewer opens the document. ``visible`` below must say the same thing
    in SQL, and the keys stored for search (``eoffice.search``) are ``reader_keys`` (tests compare them)."""
    return not reader_keys(doc).isdisjoint(viewer_keys(viewer))


def visible(viewer: Viewer) -> ColumnElement[bool]:
    """SQL filter on ``documents`` equivalent to ``can_see``."""
    by_grant = [Grant.user_id == viewer.user_id if not viewer.principals
                else Grant.user_id.in_(sorted({viewer.user_id, *viewer.principals}))]
    if viewer.unit_ids:
        by_grant.append(Grant.unit_id.in_(sorted(viewer.unit_ids)))
    clauses: list[ColumnElement[bool]] = []
    if viewer.register_agency_id is not None:  # first: cheap, and true for most of a clerk's rows
        clauses.append(and_(
            Document.agency_id == viewer.register_agency_id,
            Document.confidentiality == "thuong",
            or_(Document.number.is_not(None), Document.status == Status.APPROVED),
        ))
    clauses.append(exists(select(Grant.id).where(Grant.document_id == Document.id, or_(*by_grant))))
    return or_(*clauses)


async def viewer_for(uow: UnitOfWork, user: User) -> Viewer:
    units: set[int] = set()
    register_agency: int | None = None
    if user.unit_id is not None and user.has_role(Role.LEADER):
        units.add(user.unit_id)
    if user.has_role(Role.CLERK):
        try:
            register_agency = (await agency_of(uow, user.unit_id)).id
            units.add(register_agency)
        except NotFound:
            pass
    # ủy quyền: a deputy sees, while the delegation lasts, what the leader they act for sees
    principals = frozenset(await delegation.principals(uow, user)) if user.has_role(Role.LEADER) else frozenset()
    return Viewer(user.id, frozenset(units), register_agency, principals)


async def grant(uow: UnitOfWork, document_id: int, reason: str, *, user_id: int | None = None,
                unit_id: int | None = None) -> None:
    """Give access (idempotent per document, target and reason). The caller also tells the search
    index (``eoffice.search.keys_changed``; a new document's keys follow its words)."""
    if (user_id is None) == (unit_id is None):
        raise ValueError("a grant is for exactly one user or one unit")
    target = Grant.user_id == user_id if user_id is not None else Grant.unit_id == unit_id
    found = await uow.session.scalar(
        select(Grant.id).where(Grant.document_id == document_id, Grant.reason == reason, target).limit(1)
    )
    if found is None:
        uow.session.add(Grant(document_id=document_id, user_id=user_id, unit_id=unit_id, reason=reason))


async def facts(uow: UnitOfWork, doc: object) -> DocFacts:
    assert isinstance(doc, Document)
    rows = (await uow.session.execute(
        select(Grant.user_id, Grant.unit_id).where(Grant.document_id == doc.id)
    )).all()
    return doc_facts(doc.agency_id, doc.confidentiality, doc.number, doc.status, [(r[0], r[1]) for r in rows])


def doc_facts(agency_id: int, confidentiality: str, number: int | None, status: str,
              grants: Iterable[tuple[int | None, int | None]]) -> DocFacts:
    """DocFacts from a document's columns and its grants (user_id, unit_id)."""
    return DocFacts(agency_id, confidentiality != "thuong", number is not None or status == Status.APPROVED,
                    tuple(sorted(set(grants), key=lambda g: (g[0] or 0, g[1] or 0))))
