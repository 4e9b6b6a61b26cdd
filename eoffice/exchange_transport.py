"""How packages leave for peers (#16): an adapter interface for the exchange platform, the direct
installation-to-installation transport (the first implementation) and the outbox's background sender.

``ExchangePlatform`` is what a national or provincial document gateway's adapter implements: hand one package,
with its idempotency key, to the organisation it is addressed to, and say whether it was accepted (return),
refused for good (``Refused``: the other side quarantined it) or could not be delivered now (``Undelivered`` or a
network error: retried after a back-off). ``DirectTransport`` posts the package to the peer's
``/api/exchange/inbox``, signed with this installation's Ed25519 key (``eoffice.exchange_sign``).

``ExchangeSender`` is the outbox's loop (``eoffice.outbox.OutboxSender``: claimed rows, doubling back-off, woken
after a commit that queued a package). A document's package is built once, on its first attempt, by the edXML
exporter as the clerk who issued it (PDFs signed with the agency certificate when one is configured) and kept in
the blob store, so every retry sends the same bytes; a status package is built from its status event."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from eoffice import edxml
from eoffice.exchange import INBOX_PATH
from eoffice.exchange_sign import H_SIGNATURE, Envelope, sign
from eoffice.org import Unit, User
from eoffice.outbox import Gone, OutboxSender
from eoffice.schema.documents import Document
from eoffice.schema.edxml import StatusEvent
from eoffice.schema.exchange import KIND_DOCUMENT, ExchangeOutbox, ExchangePeer
from storage import keys
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import AppError


class Undelivered(Exception):
    """The peer did not take the package now (down, overloaded, refused our signature): try again later."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(f"{status}: {reason}" if status else reason)
        self.status = status


class Refused(Gone):
    """The peer read the package and refused it for good (quarantined there): not retried; the clerk may re-send."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(f"{status}: {reason}" if status else reason)
        self.status = status


class ExchangePlatform(Protocol):
    async def deliver(self, peer: ExchangePeer, from_organ: str, idem_key: str, package: bytes) -> int:
        """Hand ``package`` to ``peer``; the other side's answer (an HTTP status or the platform's own code)."""
        ...


class DirectTransport:
    """Installation to installation over HTTPS, each request signed (``eoffice.exchange_sign``)."""

    def __init__(self, db_url: str, *, timeout: float = 60.0, client: httpx.AsyncClient | None = None) -> None:
        self.db_url, self.timeout, self.client = db_url, timeout, client

    async def deliver(self, peer: ExchangePeer, from_organ: str, idem_key: str, package: bytes) -> int:
        url = peer.base_url.rstrip("/") + INBOX_PATH
        env = Envelope(from_organ=from_organ, to_organ=peer.organ_id, timestamp=int(time.time()),
                       request_id=uuid.uuid4().hex, idem_key=idem_key)
        headers = {**env.headers(), H_SIGNATURE: sign(keys.secret_for(self.db_url), "POST", urlsplit(url).path,
                                                      env, package),
                   "content-type": "application/xml", "x-content-sha256": hashlib.sha256(package).hexdigest()}
        if self.client is not None:
            response = await self.client.post(url, content=package, headers=headers, timeout=self.timeout)
        else:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(url, content=package, headers=headers)
        if response.status_code in (200, 201):
            return response.status_code
        if response.status_code == 422:
            raise Refused(response.status_code, _reason(response))
        raise Undelivered(response.status_code, _reason(response))


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message") or body.get("error") or body)[:300] if isinstance(body, dict) else str(body)[:300]


class ExchangeSender(OutboxSender):
    """The exchange outbox's background sender."""

    model = ExchangeOutbox
    name = "exchange"
    retry_on = (OSError, httpx.HTTPError, Undelivered)

    def __init__(self, db: Database, blobs: BlobStore, platform: ExchangePlatform | None = None, *,
                 retry_base: float = 60.0, retry_max: float = 3600.0, poll: float = 60.0) -> None:
        super().__init__(db, retry_base=retry_base, retry_max=retry_max, poll=poll)
        self.blobs = blobs
        self.platform: ExchangePlatform = platform or DirectTransport(db.url)

    async def package(self, row: ExchangeOutbox) -> tuple[ExchangePeer, str, bytes]:
        """The peer, our organisation id and the package's bytes (built and kept on the first attempt)."""
        async with self.db.uow() as uow:
            fresh = await uow.session.get(ExchangeOutbox, row.id)
            peer = await uow.session.get(ExchangePeer, row.peer_id)
            agency = await uow.session.get(Unit, row.agency_id)
            if fresh is None or peer is None or agency is None:
                raise Gone("gói tin hoặc cơ quan nhận không còn")
            try:
                if fresh.kind == KIND_DOCUMENT:
                    if fresh.blob_key:
                        return peer, agency.code, await self.blobs.read(fresh.blob_key, limit=1 << 31)
                    clerk = await uow.session.get(User, fresh.created_by) if fresh.created_by else None
                    if clerk is None or fresh.document_id is None:
                        raise Gone("không còn văn thư đã phát hành văn bản")
                    data = await edxml.export_document(uow, clerk, self.blobs, fresh.document_id)
                    fresh.blob_key = (await self.blobs.put_bytes(data, content_type="application/xml")).key
                    await uow.commit()
                    return peer, agency.code, data
                event = await uow.session.get(StatusEvent, fresh.status_event_id) if fresh.status_event_id else None
                doc = await uow.session.get(Document, event.document_id) if event else None
                if event is None or doc is None:
                    raise Gone("trạng thái hoặc văn bản không còn")
                return peer, agency.code, await edxml.status_xml(uow, event, doc)
            except AppError as exc:  # voided, made confidential...: the clerk sees why and may re-send
                raise Gone(exc.message) from None

    async def deliver(self, row: ExchangeOutbox) -> None:
        peer, organ, data = await self.package(row)
        answer: int | None = None  # no answer: unreachable, timed out
        try:
            answer = await self.platform.deliver(peer, organ, row.idem_key, data)
        except (Undelivered, Refused) as exc:
            answer = exc.status
            raise
        finally:
            async with self.db.uow() as uow:
                fresh = await uow.session.get(ExchangeOutbox, row.id)
                if fresh is not None:
                    fresh.last_status = answer
                    await uow.commit()


__all__ = ["DirectTransport", "ExchangePlatform", "ExchangeSender", "Refused", "Undelivered"]
