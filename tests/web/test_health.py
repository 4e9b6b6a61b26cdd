"""/livez, /readyz and /healthz against real services: a PostgreSQL database of its own that stops taking
connections, a Redis port and an S3 port where nothing listens."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from storage import keys
from storage.migrate import migrate
from storage.settings import Settings
from tests.conftest import _pg_exec, free_port, scratch_pg_database
from web.app import create_app


def test_all_up(client: TestClient) -> None:
    live = client.get("/livez")
    assert live.status_code == 200 and live.json()["status"] == "ok" and live.json()["loop_lag_ms"] >= 0
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert {k for k, v in ready.json()["checks"].items() if v["ok"]} == {"database", "blobs", "broker"}
    assert ready.headers["cache-control"] == "no-store"
    assert client.get("/healthz").json()["status"] == "ok"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_redis_and_s3_down_is_degraded_not_unready(settings: Settings) -> None:
    down = replace(settings, broker_url=f"redis://127.0.0.1:{free_port()}/0",
                   blob_url=f"s3://eoffice-test?endpoint=127.0.0.1:{free_port()}&access_key=a&secret_key=b")
    with TestClient(create_app(down)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "degraded" and "broker" in body["message"] and "blobs" in body["message"]
        assert body["checks"]["database"]["ok"] is True
        for name in ("broker", "blobs"):
            assert body["checks"][name]["ok"] is False and body["checks"][name]["error"]
            assert body["checks"][name]["failing_for_s"] >= 0
        again = client.get("/readyz").json()  # still failing: the outage's length is reported
        assert again["checks"]["broker"]["failing_for_s"] >= body["checks"]["broker"]["failing_for_s"]
        assert client.get("/livez").status_code == 200
        assert client.get("/healthz").status_code == 503  # /healthz keeps its all-or-nothing meaning


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_database_down_is_unready_but_alive(settings: Settings, tmp_path: object) -> None:
    async with scratch_pg_database("eoffice_ready") as url:
        await asyncio.to_thread(migrate, url)
        keys.register(url, settings.secret_key)
        name = url.rsplit("/", 1)[1]
        mine = replace(settings, database_url=url)

        def probe() -> dict[str, object]:
            with TestClient(create_app(mine)) as client:
                assert client.get("/readyz").status_code == 200
                asyncio.run(_pg_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                asyncio.run(_pg_exec(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     f"WHERE datname = '{name}'"))
                try:
                    ready, live = client.get("/readyz"), client.get("/livez")
                finally:
                    asyncio.run(_pg_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                return {"ready": ready, "live": live.status_code, "back": client.get("/readyz").status_code}

        seen = await asyncio.to_thread(probe)
        ready = seen["ready"]
        assert ready.status_code == 503 and ready.headers["retry-after"] == "5"  # type: ignore[attr-defined]
        body = ready.json()  # type: ignore[attr-defined]
        assert body["status"] == "unavailable" and "Cơ sở dữ liệu" in body["message"]
        assert body["checks"]["database"]["ok"] is False
        assert seen["live"] == 200  # never restarted for a dependency's outage
        assert seen["back"] == 200
