"""Signalling for one peer connection between a participant and the SFU, independent of the transport.

The meeting room's WebSocket (or a test, or the benchmark) feeds each JSON message from the client to
:meth:`SignallingSession.handle` and delivers what the session passes to its ``send`` callback. Nothing here knows
about sockets, so the whole exchange is tested with in-process links.

Two peer connections per participant, each with one fixed offerer (as LiveKit does):

* ``"pub"``: the client publishes its camera and microphone. The client offers, the server answers. A client that
  adds or removes a track later offers again.
* ``"sub"``: the server sends the other participants' media. The server offers, the client answers. The server
  renegotiates when a participant joins and new slots are needed.

With one offerer per connection there is no glare to resolve, which matters because aiortc cannot roll back a local
offer. The session still serialises everything (one message at a time, one offer in flight): a renegotiation
requested while an offer is outstanding is made once the answer arrives, coalesced into one offer.

Messages (every message carries ``"pc": "pub" | "sub"``)::

    client -> server  {"type": "offer", "sdp": ...}                       (pub only)
                      {"type": "answer", "sdp": ...}                      (sub only)
                      {"type": "candidate", "candidate": "candidate:...", "sdpMid": "0", "sdpMLineIndex": 0}
                      {"type": "candidate", "candidate": null}            end of candidates
    server -> client  {"type": "answer", "sdp": ...}                      (pub)
                      {"type": "offer", "sdp": ..., **extra}              (sub; extra e.g. the slot map)
                      {"type": "error", "reason": ...}

Trickle ICE: aiortc gathers all of its candidates before ``setLocalDescription`` returns, so the server's candidates
are inside its SDP and it never trickles. The client may trickle; candidates that arrive before the description they
belong to are kept and applied after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiortc import RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.sdp import candidate_from_sdp

logger = logging.getLogger(__name__)

# What aiortc raises for a description or candidate it cannot apply: reported to the client as an error message.
_REJECTED = (ValueError, KeyError, InternalError, InvalidAccessError, InvalidStateError, OperationError)

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


class SignallingError(ValueError):
    """A message that does not fit the session's state or role."""


class SignallingSession:
    def __init__(
        self,
        pc: RTCPeerConnection,
        send: Send,
        *,
        name: Literal["pub", "sub"],
        extra: Callable[[], Message] | None = None,
    ) -> None:
        self.pc = pc
        self.name = name
        self.role: Literal["answerer", "offerer"] = "answerer" if name == "pub" else "offerer"
        self._send = send
        self._extra = extra
        self._lock = asyncio.Lock()
        self._pending_candidates: list[RTCIceCandidate | None] = []
        self._negotiation_needed = False
        self.offers_sent = 0
        self.answers_sent = 0
        self.closed = False

    @property
    def awaiting_answer(self) -> bool:
        return self.pc.signalingState == "have-local-offer"

    async def handle(self, message: Message) -> None:
        """Apply one message from the client. Protocol errors are reported to the client, not raised."""
        try:
            async with self._lock:
                if self.closed:
                    return
                kind = message.get("type")
                if kind == "offer":
                    await self._on_offer(message)
                elif kind == "answer":
                    await self._on_answer(message)
                elif kind == "candidate":
                    await self._on_candidate(message)
                else:
                    raise SignallingError(f"unknown message type {kind!r}")
        except _REJECTED as exc:
            logger.info("signalling %s: %s: %s", self.name, type(exc).__name__, exc)
            await self._emit({"type": "error", "reason": str(exc) or type(exc).__name__})

    async def negotiate(self) -> None:
        """Server-initiated (re)negotiation: send an offer now, or after the outstanding one is answered."""
        if self.role != "offerer":
            raise SignallingError("only the server-offered connection renegotiates from the server")
        async with self._lock:
            if self.closed:
                return
            self._negotiation_needed = True
            if not self.awaiting_answer:
                await self._make_offer()

    async def close(self) -> None:
        async with self._lock:
            self.closed = True
            self._pending_candidates.clear()
        await self.pc.close()

    async def _on_offer(self, message: Message) -> None:
        if self.role != "answerer":
            raise SignallingError("the server offers on this connection; send an answer")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=_sdp(message), type="offer"))
        await self._apply_pending_candidates()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.answers_sent += 1
        await self._emit({"type": "answer", "sdp": self.pc.localDescription.sdp})

    async def _on_answer(self, message: Message) -> None:
        if self.role != "offerer" or not self.awaiting_answer:
            raise SignallingError("no offer is waiting for an answer")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=_sdp(message), type="answer"))
        await self._apply_pending_candidates()
        if self._negotiation_needed:
            await self._make_offer()

    async def _make_offer(self) -> None:
        self._negotiation_needed = False
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offers_sent += 1
        message: Message = {"type": "offer", "sdp": self.pc.localDescription.sdp}
        if self._extra is not None:
            message.update(self._extra())
        await self._emit(message)

    async def _on_candidate(self, message: Message) -> None:
        candidate = _parse_candidate(message)  # malformed candidates are refused now, not when applied
        if self.pc.remoteDescription is None:
            self._pending_candidates.append(candidate)
        else:
            await self.pc.addIceCandidate(candidate)

    async def _apply_pending_candidates(self) -> None:
        pending, self._pending_candidates = self._pending_candidates, []
        for candidate in pending:
            await self.pc.addIceCandidate(candidate)

    async def _emit(self, message: Message) -> None:
        message["pc"] = self.name
        await self._send(message)


def _parse_candidate(message: Message) -> RTCIceCandidate | None:
    """A trickled candidate, or None for end-of-candidates."""
    text = message.get("candidate")
    if not text:
        return None
    if not isinstance(text, str):
        raise SignallingError("candidate must be a string")
    try:
        candidate = candidate_from_sdp(text.removeprefix("a=").removeprefix("candidate:"))
    except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts the field count
        raise SignallingError(f"malformed candidate: {text[:80]!r}") from exc
    candidate.sdpMid = message.get("sdpMid")
    candidate.sdpMLineIndex = message.get("sdpMLineIndex")
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        raise SignallingError("candidate needs sdpMid or sdpMLineIndex")
    return candidate


def _sdp(message: Message) -> str:
    sdp = message.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise SignallingError("message has no SDP")
    return sdp
