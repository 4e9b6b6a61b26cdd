"""Graceful drain on SIGTERM (``eoffice serve``): a restart or scale-down loses no request and no vote.

1. SIGTERM: the process starts *draining*. ``/readyz`` answers 503 ``draining`` at once, so the load
   balancer stops sending new requests here; requests still arriving are served for ``EOFFICE_DRAIN_DELAY``
   seconds (default 5: a few health-check intervals), each answer with ``Connection: close`` so keep-alive
   clients reconnect through the load balancer.
2. Then uvicorn's own shutdown: the listening socket is closed (new connections are refused), idle keep-alive
   connections are closed, and every WebSocket is closed with code 1012 (*service restart*), which the pages'
   live connection (``web/static/js/live.js``) and the video room (``video.js``) treat as "reconnect": with
   their back-off they land on another server. Requests in flight get ``EOFFICE_DRAIN_GRACE`` seconds (default
   30) to finish; any still running then are cancelled.
3. The app's lifespan ends: the vote batcher (``meetings.polls_live.CastBatcher``) commits every cast it holds
   before the database is closed (a cast is acknowledged only after its commit, and a cancelled request's cast
   is shielded), then the workers, the hub and the broker stop and the process exits with status 0.

Ctrl-C (SIGINT: someone at a terminal, no load balancer to tell) and a second SIGTERM skip the wait of step 1.

``--workers N`` (``serve_workers``): uvicorn's supervisor, each worker process a ``DrainServer``. SIGTERM to the
supervisor makes it send SIGTERM to every worker, and wait for them: each drains as above (its own /readyz 503
for the delay, its sockets closed with 1012, its requests in flight finished), then the supervisor exits.
"""

from __future__ import annotations

import functools
import logging
import signal
import socket
import time
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.supervisors import multiprocess

log = logging.getLogger(__name__)

RESTART_CODE = 1012  # what uvicorn closes WebSockets with at shutdown: "service restart", the clients reconnect


class Drain:
    """Whether this process is draining (``/readyz`` reads it)."""

    def __init__(self) -> None:
        self.started_at: float | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def start(self) -> None:
        if self.started_at is None:
            self.started_at = time.monotonic()

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at


DRAIN = Drain()  # one per process: it is the process that drains


class CloseWhileDraining:
    """ASGI middleware: while draining, every HTTP answer says ``Connection: close``, so a client or proxy holding a
    keep-alive connection opens its next one where the load balancer now sends it, not here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and DRAIN.draining:
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


class DrainServer(uvicorn.Server):
    """uvicorn's server with step 1 (module docstring) before its own graceful shutdown."""

    def __init__(self, config: uvicorn.Config, delay: float) -> None:
        super().__init__(config)
        self.delay = max(0.0, delay)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if DRAIN.draining or self.delay == 0 or sig != signal.SIGTERM:  # a second signal, Ctrl-C: no waiting
            DRAIN.start()
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM and sig in self._captured_signals:
                self._captured_signals.remove(sig)  # a drained stop is a clean exit (0), not death by the signal
            return
        DRAIN.start()  # not logged here: a handler must not take the logging lock the interrupted code may hold

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if not DRAIN.draining:
            return False
        if not getattr(self, "_drain_logged", False):
            self._drain_logged = True
            log.info("%s: draining: /readyz answers 503; new connections refused in %.1f s",
                     "SIGTERM", self.delay)
        return DRAIN.elapsed() >= self.delay


class DrainProcess(multiprocess.Process):
    """One worker of uvicorn's supervisor running a ``DrainServer`` instead of uvicorn's plain server (pickled to
    the spawned worker with its delay)."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], delay: float = 0.0) -> None:
        self.delay = delay
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainServer(self.config, self.delay)
        return self._server


def serve_workers(config: uvicorn.Config, delay: float) -> None:
    """``uvicorn.run(..., workers=N)`` with every worker draining on SIGTERM (module docstring).

    uvicorn's supervisor builds its workers from its module's ``Process`` (at start, on SIGHUP, SIGTTIN and when it
    replaces a dead worker) and offers no way to choose the class: that name is pointed at ``DrainProcess`` while
    the supervisor runs (it is this process's only job). ``tests/web/test_drain_workers.py`` fails if uvicorn
    stops using it."""
    sock = config.bind_socket()
    original = multiprocess.Process
    setattr(multiprocess, "Process", functools.partial(DrainProcess, delay=delay))  # noqa: B010
    try:
        multiprocess.Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:  # as uvicorn.run
        pass
    finally:
        setattr(multiprocess, "Process", original)  # noqa: B010
        sock.close()


__all__ = ["DRAIN", "RESTART_CODE", "CloseWhileDraining", "Drain", "DrainProcess", "DrainServer", "serve_workers"]
