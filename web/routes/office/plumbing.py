"""What every e-office API handler shares: the app's e-office workers (setup, startup, shutdown,
ingest jobs), reading parameters (web.inputs) and the one unit-of-work helper.

A handler reads its input (``body`` checks the login first, so an anonymous request is a 401
whatever it sends), then runs its service calls with ``change`` (one transaction, committed when
they all succeed) or ``read`` (a read-only one), and answers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from eoffice import live, pdfsandbox, renditions
from eoffice.agency_time import AGENCY_TZ
from eoffice.org import User
from storage.db import UnitOfWork
from storage.errors import Invalid
from web import inputs
from web.auth import require_user
from web.inputs import json_body

log = logging.getLogger(__name__)
T = TypeVar("T")


# ---- the e-office's workers -------------------------------------------------------------------

def setup(app: Starlette) -> None:
    """At startup: the e-office's hub topics (eoffice.live: document:{id} follows the document's
    access, unit:{id} its leaders and its agency clerks, each with a snapshot for a client too far
    behind to replay). The ingest runner is one of the app's workers (``web.services``)."""
    live.register(app.state.hub)
    pdfsandbox.configure(pdfsandbox.limits_from(app.state.settings))
    renditions.configure(renditions.config_from(app.state.settings))


async def startup(app: Starlette) -> None:
    """The PDF workers, in the background: the first pages do not wait for their imports. (The daily digest, the
    upload cleaner and the re-queueing of unfinished text extraction are the app's workers, ``web.services``.)"""
    app.state.pdf_workers_starting = asyncio.get_running_loop().create_task(pdfsandbox.start(), name="pdf-workers")


async def shutdown(app: Starlette) -> None:
    with contextlib.suppress(Exception):
        await app.state.pdf_workers_starting  # set by startup, which the lifespan always runs first
    await anyio.to_thread.run_sync(pdfsandbox.shutdown)


# ---- one unit of work per request -------------------------------------------------------------

async def change(request: Request, work: Callable[[UnitOfWork, User], Awaitable[T]]) -> T:
    """Run ``work`` for the logged-in user in one transaction, committed when it returns."""
    user = require_user(request)
    async with request.app.state.db.uow() as uow:
        result = await work(uow, user)
        await uow.commit()
    return result


async def read(request: Request, work: Callable[[UnitOfWork, User], Awaitable[T]]) -> T:
    """Run ``work`` for the logged-in user in a read-only transaction."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        return await work(uow, user)


async def body(request: Request) -> dict[str, Any]:
    """The JSON body of a logged-in user's request (anonymous: 401 before any complaint about it)."""
    require_user(request)
    return await json_body(request)


# ---- parameters -------------------------------------------------------------------------------

def int_(value: Any, field: str, *, optional: bool = False) -> Any:
    return inputs.int_value(value, field, optional=optional)


def date(value: Any, field: str) -> dt.date | None:
    return inputs.date_value(value, field)


def datetime(value: Any, field: str) -> dt.datetime | None:
    return inputs.datetime_value(value, field, AGENCY_TZ)


def ids(value: Any, field: str) -> list[int]:
    return inputs.ids_value(value, field)


def text(b: dict[str, Any], key: str, default: str = "") -> str:
    return inputs.str_value(b.get(key, default), key, max_length=inputs.JSON_MAX_BYTES, default=default)


def items(b: dict[str, Any], key: str) -> list[Any]:
    value = b.get(key) or []
    if not isinstance(value, list):
        raise Invalid(f"«{key}» phải là một danh sách.", field=key)
    return value


def path_id(request: Request, name: str = "id") -> int:
    return inputs.path_id(request, name)


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)
