"""uvicorn's WebSocket protocol plus a direct frame writer for the hub's fan-out.

Why: a live event goes to every tablet in the room. Through ASGI, each of those sends is its
own trip: the connection's sender task wakes up, ``websocket.send`` goes through Starlette and
uvicorn, the sans-I/O protocol builds a frame and (with permessage-deflate) compresses it again
for that one connection. That was 50–90 µs per socket, so one tally update to a hall of 2,000
tablets cost 100–180 ms of the only core the server has. Here the frame is built once per event
(``frame``: a server frame is not masked, so the same bytes are valid on every connection) and
written straight to each transport from the hub's dispatch loop: a few µs per socket.

The writer is offered to the application as the ASGI scope extension ``eoffice.frames``
(``FrameWriter``); ``web.routes.ws`` hands it to the hub's ``Connection``. Servers without it
(the test client, another ASGI server) keep the ordinary ``send_text`` path.

Compression (permessage-deflate, RFC 7692) is kept, once per event instead of once per socket: a
message longer than ``DEFLATE_MIN`` bytes is deflated on its own (``Frames.deflated``: a raw
deflate stream that refers to nothing before its own start, flushed and with the 4-byte tail
removed as the RFC asks). Such a stream inflates correctly whatever window the receiver keeps
from earlier messages, so the same bytes serve every connection that negotiated the extension,
context takeover or not. The window is the 12 bits that uvicorn negotiates as
``server_max_window_bits``. Shorter messages, and connections without the extension, get the
plain frame (RSV1 clear: the RFC lets a sender compress message by message). Once the hub writes
a connection's frames, nothing else sends data frames on it, so uvicorn's own per-connection
compressor is never used and cannot disagree with the receiver's window.

Rules that keep the stream valid:
- Every frame is one ``transport.write`` of a complete frame, and nothing is written after the
  close frame or once the transport is closing. uvicorn's own writes (handshake, pong, close) are
  whole frames too, so the two never interleave inside a frame.
- A slow reader shows as bytes piling up in the transport (``buffered``); the hub drops such a
  connection ("too slow", 4008) and the client resumes with ``since``.

Use it with ``uvicorn.run(..., ws=PROTOCOL)`` (``eoffice serve`` does).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate

PROTOCOL = "web.ws_protocol:FrameProtocol"
EXTENSION = "eoffice.frames"
DEFLATE_MIN = 256  # bytes: below this a deflated message saves too little to be worth the receiver's work
WINDOW_BITS = 12  # uvicorn's server_max_window_bits: the receiver's window is at least this


def _frame(first_byte: int, data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        head = bytes((first_byte, n))
    elif n < 65536:
        head = bytes((first_byte, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first_byte, 127)) + n.to_bytes(8, "big")
    return head + data


def frame(text: str) -> bytes:
    """One complete, unmasked, uncompressed text frame (FIN set) carrying ``text``."""
    return _frame(0x81, text.encode())


def deflated_frame(text: str) -> bytes:
    """One complete text frame (FIN and RSV1 set) carrying ``text`` deflated on its own."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -WINDOW_BITS, 8)
    data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return _frame(0xC1, data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data)


@dataclass(frozen=True, slots=True)
class Frames:
    """An event's wire frames, built once for all connections: plain, and deflated when worth it."""

    plain: bytes
    deflated: bytes | None

    @classmethod
    def of(cls, text: str) -> Frames:
        deflated = deflated_frame(text) if len(text) >= DEFLATE_MIN else None
        plain = frame(text)
        return cls(plain, deflated if deflated is not None and len(deflated) < len(plain) else None)


class FrameWriter:
    """Write whole frames to one client's transport, bypassing the per-message ASGI path."""

    __slots__ = ("_deflate", "_protocol")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self._deflate: bool | None = None  # known once the handshake is done

    @property
    def deflate(self) -> bool:
        """Whether the client negotiated permessage-deflate (and so takes deflated frames)."""
        if self._deflate is None:
            self._deflate = any(isinstance(e, PerMessageDeflate) for e in self._protocol.conn.extensions)
        return self._deflate

    @property
    def open(self) -> bool:
        p = self._protocol
        return p.handshake_complete and not (p.close_sent or p.disconnected or p.transport.is_closing())

    def write(self, frames: Frames) -> bool:
        """Write one event's frame; False (nothing written) once the connection is closing."""
        p = self._protocol
        if not p.handshake_complete or p.close_sent or p.disconnected or p.transport.is_closing():
            return False
        p.transport.write(frames.deflated if frames.deflated is not None and self.deflate else frames.plain)
        return True

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client's socket."""
        return self._protocol.transport.get_write_buffer_size()


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets sans-I/O protocol, offering a ``FrameWriter`` in the scope."""

    async def run_asgi(self) -> None:
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})  # type: ignore[assignment]
        extensions[EXTENSION] = FrameWriter(self)
        await super().run_asgi()
