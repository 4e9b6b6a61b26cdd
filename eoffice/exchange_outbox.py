"""Queuing packages for peers (#16): an issued document addressed to a peer, and our status events about a document
a peer sent us. Called inside the transaction that changes the document (``eoffice.outgoing.issue``,
``eoffice.edxml``'s status events), so a package is queued exactly when its change commits; delivered by
``eoffice.exchange_transport.ExchangeSender``."""

from __future__ import annotations

from sqlalchemy import select

from eoffice.schema.exchange import KIND_DOCUMENT, KIND_STATUS, ExchangeOutbox, ExchangePeer
from eoffice.textfold import fold
from storage.db import UnitOfWork

CONSUMER = "exchange"  # the sender's wake-up among the database's consumers


def idem_key(document_id: str, kind: str) -> str:
    """The package's idempotency key: its DocumentId and what it is (``doc0`` a new document, ``st03`` status 03)."""
    return f"{document_id}#{kind}"[:140]


async def peers_for_recipients(uow: UnitOfWork, agency_id: int, recipients: list[dict[str, object]]
                               ) -> list[ExchangePeer]:
    """The agency's peers among a document's recipients: by organisation id, else by name (compared folded)."""
    peers = list((await uow.session.scalars(select(ExchangePeer).where(ExchangePeer.agency_id == agency_id))).all())
    found: list[ExchangePeer] = []
    for r in recipients:
        organ, name = str(r.get("organ_id") or ""), fold(str(r.get("name") or ""))
        for p in peers:
            if p not in found and ((organ and p.organ_id == organ) or (name and fold(p.name) == name)):
                found.append(p)
    return found


async def _queue(uow: UnitOfWork, row: ExchangeOutbox) -> ExchangeOutbox | None:
    have = await uow.session.scalar(select(ExchangeOutbox).where(ExchangeOutbox.peer_id == row.peer_id,
                                                                 ExchangeOutbox.idem_key == row.idem_key))
    if have is not None:
        return None
    uow.session.add(row)
    await uow.session.flush()
    wake = uow.db.consumers.get(CONSUMER)
    if wake is not None:
        uow.after_commit(lambda: wake([]))
    return row


async def queue_document(uow: UnitOfWork, peer: ExchangePeer, document_id: int, remote_document_id: str,
                         created_by: int | None, business_type: int = 0) -> ExchangeOutbox | None:
    """Queue a document package for ``peer``; None when it is queued already (same DocumentId and kind)."""
    return await _queue(uow, ExchangeOutbox(
        agency_id=peer.agency_id, peer_id=peer.id, kind=KIND_DOCUMENT, document_id=document_id,
        idem_key=idem_key(remote_document_id, f"doc{business_type}"), created_by=created_by, attempts=0,
        last_error=""))


async def queue_status(uow: UnitOfWork, agency_id: int, organ_id: str, remote_document_id: str, document_id: int,
                       event_id: int, code: str) -> ExchangeOutbox | None:
    """Queue a status event back to the peer that sent the document, when the sender is one of our peers."""
    peer = await uow.session.scalar(select(ExchangePeer).where(ExchangePeer.agency_id == agency_id,
                                                               ExchangePeer.organ_id == organ_id))
    if peer is None or not remote_document_id:
        return None
    return await _queue(uow, ExchangeOutbox(
        agency_id=agency_id, peer_id=peer.id, kind=KIND_STATUS, document_id=document_id, status_event_id=event_id,
        status_code=code, idem_key=idem_key(remote_document_id, f"st{code}"), attempts=0, last_error=""))


__all__ = ["CONSUMER", "idem_key", "peers_for_recipients", "queue_document", "queue_status"]
