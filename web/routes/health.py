"""/healthz: is the database, the blob store and the broker answering?"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CHECK_TIMEOUT = 5.0


async def _timed(name: str, check: object) -> tuple[str, dict[str, object]]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)  # type: ignore[arg-type]
        result: dict[str, object] = {"ok": True}
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


routes = [Route("/healthz", healthz)]
