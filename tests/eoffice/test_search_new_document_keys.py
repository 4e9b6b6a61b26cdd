"""A new document's words and reader keys go into its search vector in one statement that also
reads its grants (issue #4: one round trip less per registration). The keys stored are the
access rule's (``access.reader_keys``), for several grants of users and units given in the same
transaction, and if the rule ever says more than the statement wrote, the rule wins."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from eoffice import access, search
from eoffice.documents import register_incoming
from eoffice.schema.documents import Document, Reason
from storage.db import Database
from tests.eoffice.conftest import Org, incoming_fields


async def _stored_keys(db: Database, doc_id: int) -> set[str]:
    async with db.uow(readonly=True) as uow:
        return set((await uow.session.scalars(text(
            "SELECT u.lexeme FROM documents, unnest(search_vector) AS u WHERE id = :id AND u.lexeme LIKE '~%'"),
            {"id": doc_id})).all())


async def _expected_keys(db: Database, doc_id: int) -> set[str]:
    async with db.uow(readonly=True) as uow:
        doc = await uow.session.get(Document, doc_id)
        assert doc is not None
        return set(search.meta_lexemes(doc.id, access.reader_keys(await access.facts(uow, doc)), doc.date_issued))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the keys live in PostgreSQL's search vector
async def test_keys_of_a_new_document_with_several_grants(db: Database, org: Org) -> None:
    clerk, leader = org["vanthu"], org["lanhdao"]
    kt = org.units["KT"]
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(1), confidentiality="mat")  # type: ignore[arg-type]
        # more grants in the same transaction, after registration indexed it: rewritten at the commit
        await access.grant(uow, doc.id, Reason.ASSIGNED, user_id=leader.id)
        await access.grant(uow, doc.id, Reason.ASSIGNED, unit_id=kt.id)
        search.keys_changed(uow, [doc.id])
        await uow.commit()
    stored = await _stored_keys(db, doc.id)
    assert stored == await _expected_keys(db, doc.id)
    assert {f"~u:{clerk.id}", f"~u:{leader.id}", f"~g:{kt.id}"} <= stored
    assert not any(k.startswith("~r:") for k in stored)  # confidential: not the clerk's rule

    async with db.uow() as uow:  # an ordinary document: the clerk's rule key too
        doc2, _ = await register_incoming(uow, clerk, None, **incoming_fields(2))  # type: ignore[arg-type]
        await uow.commit()
    stored2 = await _stored_keys(db, doc2.id)
    assert stored2 == await _expected_keys(db, doc2.id)
    assert f"~r:{doc2.agency_id}" in stored2 and f"~u:{clerk.id}" in stored2


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the keys live in PostgreSQL's search vector
async def test_the_rule_wins_over_what_the_statement_wrote(db: Database, org: Org,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Should access.reader_keys give a grant a key the statement does not write, the keys are
    rewritten from the rule in the same transaction."""
    rule = access.reader_keys

    def with_extra(facts: access.DocFacts) -> frozenset[str]:
        return rule(facts) | {f"x:{u}" for u, _ in facts.grants if u is not None}

    monkeypatch.setattr(access, "reader_keys", with_extra)
    clerk = org["vanthu"]
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(3))  # type: ignore[arg-type]
        await uow.commit()
    stored = await _stored_keys(db, doc.id)
    assert f"~x:{clerk.id}" in stored
    assert stored == await _expected_keys(db, doc.id)


def test_no_session_listener_of_any_package_rewrites_keys() -> None:
    """The keys are kept by the services through their unit of work, not by a listener on every
    SQLAlchemy session of the process (the meetings' sessions included)."""
    import storage.models  # noqa: F401  # every package's modules, as the server loads them

    session = Session()
    for name in ("before_flush", "after_flush", "after_flush_postexec", "before_commit", "after_commit",
                 "after_rollback"):
        assert [getattr(fn, "__module__", "") for fn in getattr(session.dispatch, name)] == [], name


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the keys live in PostgreSQL's search vector
async def test_noted_keys_are_written_before_a_search_and_dropped_with_a_rollback(db: Database, org: Org) -> None:
    clerk, leader = org["vanthu"], org["lanhdao"]
    async with db.uow() as uow:
        doc, _ = await register_incoming(uow, clerk, None, **incoming_fields(4), confidentiality="mat")  # type: ignore[arg-type]
        await uow.commit()
    before = await _stored_keys(db, doc.id)
    async with db.uow() as uow:  # granted, then rolled back: nothing of it stays
        await access.grant(uow, doc.id, Reason.INFORMED, user_id=leader.id)
        search.keys_changed(uow, [doc.id])
        hits = await search.search(uow, leader, "Công văn triển khai chính quyền điện tử")  # written before it reads
        assert [h.document.id for h in hits] == [doc.id]
        assert [h.document.id for h in await search.search(uow, leader, "cong van trien khai")] == [doc.id]
    assert await _stored_keys(db, doc.id) == before == await _expected_keys(db, doc.id)
    async with db.uow(readonly=True) as uow:
        assert await search.search(uow, leader, "cong van trien khai") == []
