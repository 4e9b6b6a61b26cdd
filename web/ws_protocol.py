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

Rules that keep the stream valid:
- Frames written here are uncompressed (RSV1 clear). RFC 7692 lets a sender compress message by
  message; a receiver inflates only frames with RSV1 set, so its compression context (the
  connection's own compressed replies) is untouched.
- Every frame is one ``transport.write`` of a complete frame, and nothing is written after the
  close frame or once the transport is closing. uvicorn's own writes (handshake, pong, close) are
  whole frames too, so the two never interleave inside a frame.
- A slow reader shows as bytes piling up in the transport (``buffered``); the hub drops such a
  connection ("too slow", 4008) and the client resumes with ``since``.

Use it with ``uvicorn.run(..., ws=PROTOCOL)`` (``eoffice serve`` does).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

PROTOCOL = "web.ws_protocol:FrameProtocol"
EXTENSION = "eoffice.frames"


def frame(text: str) -> bytes:
    """One complete, unmasked, uncompressed text frame (FIN set) carrying ``text``."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + data


class FrameWriter:
    """Write whole frames to one client's transport, bypassing the per-message ASGI path."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def open(self) -> bool:
        p = self._protocol
        return p.handshake_complete and not (p.close_sent or p.disconnected or p.transport.is_closing())

    def write(self, data: bytes) -> bool:
        """Write one complete frame; False (nothing written) once the connection is closing."""
        p = self._protocol
        if not p.handshake_complete or p.close_sent or p.disconnected or p.transport.is_closing():
            return False
        p.transport.write(data)
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
