"""Health endpoints for load balancers, orchestrators and people (no login, no data revealed).

- ``/livez``: the process is alive and its event loop answers. Never looks at a dependency, so a database
  outage does not get healthy processes restarted. Reports the loop's lag (time to get a turn).
- ``/readyz``: may this process take traffic? 503 only when the database does not answer; Redis (broker) or
  S3 (blob store) failures are reported with their details and how long they have lasted, with status
  ``degraded`` and 200: the server still works without them (live events fall back to the database log, most
  pages need no file), so a short blip of either does not take every process out of the load balancer.
  While the process drains after SIGTERM (``web.drain``) it answers 503 ``draining``.
- ``/healthz``: every dependency must answer (200 ``ok``, else 503 ``unavailable``), as before.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from web.drain import DRAIN

CHECK_TIMEOUT = 5.0
READY_TIMEOUT = 2.0  # /readyz answers within about this long even when a dependency hangs
NO_STORE = {"Cache-Control": "no-store"}


async def _timed(name: str, check: Awaitable[Any], limit: float = CHECK_TIMEOUT) -> tuple[str, dict[str, Any]]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check, limit)
        result: dict[str, Any] = {"ok": True}
    except TimeoutError:
        result = {"ok": False, "error": f"không trả lời trong {limit:g} giây (timeout)"}
    except Exception as exc:  # any failure means not healthy; say which and why
        result = {"ok": False, "error": str(exc) or type(exc).__name__}
    result["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return name, result


async def _db_check(request: Request) -> None:
    async with request.app.state.db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def healthz(request: Request) -> JSONResponse:
    """Health of the server and the services behind it (no login needed, reveals no data)."""
    state = request.app.state
    checks = dict(
        await asyncio.gather(
            _timed("database", _db_check(request)),
            _timed("blobs", state.blobs.check()),
            _timed("broker", state.broker.check()),
        )
    )
    ok = all(c["ok"] for c in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


async def livez(request: Request) -> JSONResponse:
    """Alive: this handler ran, so the event loop is turning. ``loop_lag_ms``: how long one turn waited."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(0)
    lag = (loop.time() - start) * 1000
    return JSONResponse({"status": "ok", "loop_lag_ms": round(lag, 1), "pid": os.getpid()}, headers=NO_STORE)


def _failing_since(request: Request, name: str, ok: bool) -> float | None:
    """Seconds this dependency has been failing on consecutive checks (None when it answers)."""
    since: dict[str, float] = request.app.state.__dict__.setdefault("_ready_failing_since", {})
    now = time.monotonic()
    if ok:
        since.pop(name, None)
        return None
    return round(now - since.setdefault(name, now), 1)


async def service_checks(request: Request) -> dict[str, dict[str, Any]]:
    """The database and the broker as ``/readyz`` checks them (for the meeting control desk)."""
    state = request.app.state
    checks = dict(await asyncio.gather(_timed("database", _db_check(request), READY_TIMEOUT),
                                       _timed("broker", state.broker.check(), READY_TIMEOUT)))
    stats = getattr(state.broker, "stats", None)
    if stats is not None and stats.failing_since is not None and checks["broker"]["ok"]:
        checks["broker"] = {**checks["broker"], "ok": False, "error": "gửi sự kiện tới Redis đang lỗi"}
    return checks


async def readyz(request: Request) -> JSONResponse:
    """Ready for traffic: 503 only when the database is down or the process is draining (``web.drain``);
    broker/blob trouble is ``degraded``."""
    if DRAIN.draining:  # stopping: send new requests elsewhere, this one is still answered
        return JSONResponse({"status": "draining", "message": "Máy chủ đang dừng: hãy gửi yêu cầu tới máy chủ khác.",
                             "draining_for_s": round(DRAIN.elapsed(), 1)}, status_code=503,
                            headers={**NO_STORE, "Retry-After": "5"})
    state = request.app.state
    checks = dict(
        await asyncio.gather(
            _timed("database", _db_check(request), READY_TIMEOUT),
            _timed("blobs", state.blobs.check(), READY_TIMEOUT),
            _timed("broker", state.broker.check(), READY_TIMEOUT),
        )
    )
    stats = getattr(state.broker, "stats", None)
    if stats is not None:  # the background publisher (storage.pubsub.redis): failing even if a PING answers
        checks["broker"]["publish_queue"] = stats.queued
        checks["broker"]["publish_dropped"] = stats.dropped
        if stats.failing_since is not None and checks["broker"]["ok"]:
            checks["broker"] = {**checks["broker"], "ok": False, "error": "gửi sự kiện tới Redis đang lỗi"}
    for name, check in checks.items():
        failing = _failing_since(request, name, check["ok"])
        if failing is not None:
            check["failing_for_s"] = failing
    if not checks["database"]["ok"]:
        status, code = "unavailable", 503
        message = "Cơ sở dữ liệu không phản hồi: máy chủ này tạm thời không phục vụ được."
    elif all(c["ok"] for c in checks.values()):
        status, code, message = "ok", 200, "Sẵn sàng."
    else:
        status, code = "degraded", 200
        down = [name for name, c in checks.items() if not c["ok"]]
        message = "Sẵn sàng, nhưng có dịch vụ phụ trợ đang lỗi: " + ", ".join(down) + "."
    headers = {**NO_STORE, "Retry-After": "5"} if code == 503 else NO_STORE
    return JSONResponse({"status": status, "message": message, "checks": checks}, status_code=code,
                        headers=headers)


routes = [Route("/healthz", healthz), Route("/livez", livez), Route("/readyz", readyz)]
