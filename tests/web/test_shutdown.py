"""Shutdown in bounded steps (web.shutdown): a step that hangs or fails is logged by name and the later steps
(the database last) still run; an app whose area hangs on shutdown still stops."""

from __future__ import annotations

import asyncio
import logging
import time
import types

import pytest
from starlette.testclient import TestClient

from storage.db import Database
from storage.settings import Settings
from web import app as app_module
from web import shutdown
from web.app import create_app


async def test_a_step_that_hangs_is_named_cancelled_and_passed(caplog: pytest.LogCaptureFixture) -> None:
    cancelled = asyncio.Event()

    async def stuck_on_a_lost_connection() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    ran: list[str] = []

    async def later() -> None:
        ran.append("database")

    with caplog.at_level(logging.ERROR, logger="web.shutdown"):
        assert await shutdown.step("ingest runner", stuck_on_a_lost_connection, seconds=0.2) is False
        assert await shutdown.step("database", later) is True
    await asyncio.wait_for(cancelled.wait(), 5)
    assert ran == ["database"]
    (record,) = caplog.records
    assert "ingest runner did not finish" in record.getMessage()
    assert "stuck_on_a_lost_connection" in record.getMessage()  # what it was waiting on, for whoever reads the log


async def test_a_step_that_fails_is_logged_and_the_next_runs(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("kết nối Redis đã mất")

    with caplog.at_level(logging.ERROR, logger="web.shutdown"):
        assert await shutdown.step("broker", broken) is False
    assert "broker failed" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None and "Redis" in str(caplog.records[0].exc_info[1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_area_that_hangs_on_shutdown_does_not_keep_the_server(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    async def hang(app: object) -> None:
        await asyncio.Event().wait()

    stuck_area = types.SimpleNamespace(__name__="web.routes.stuck", routes=[], shutdown=hang)
    monkeypatch.setattr(app_module, "ROUTE_MODULES", [*app_module.ROUTE_MODULES, stuck_area])
    monkeypatch.setattr(shutdown, "STEP_SECONDS", 0.5)
    disposed: list[str] = []
    real_dispose = Database.dispose

    async def dispose(self: Database) -> None:
        disposed.append(self.url)
        await real_dispose(self)

    monkeypatch.setattr(Database, "dispose", dispose)
    with caplog.at_level(logging.ERROR, logger="web.shutdown"):
        with TestClient(create_app(settings)) as c:
            assert c.get("/livez").status_code == 200
            started = time.monotonic()
    assert time.monotonic() - started < 15
    assert disposed, "the database was not closed after the stuck area"
    assert any("web.routes.stuck did not finish" in r.getMessage() for r in caplog.records)
