"""Schemathesis over the served OpenAPI description: no operation answers bad input with a 5xx.

A real server (uvicorn on a loopback port, the demo organisation, meeting and documents on a
SQLite file) is fuzzed through every operation of ``/api/openapi.json`` with a real bearer token
(the CSRF-free path). Examples are bounded and derandomised, so a run is repeatable and short.
Set ``EOFFICE_FUZZ_EXAMPLES`` for a longer local run.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from eoffice import demo, identity
from meetings.demo import ORGANISER, create_demo_meeting
from storage.blobs import open_blob_store
from storage.db import Database
from storage.migrate import migrate
from storage.settings import Settings
from tests.conftest import free_port, in_thread
from web.app import create_app

EXAMPLES = int(os.environ.get("EOFFICE_FUZZ_EXAMPLES", "12"))
REPORT = bool(os.environ.get("EOFFICE_FUZZ_REPORT"))


async def _seed(settings: Settings) -> str:
    db = Database(settings.database_url)
    blobs = open_blob_store(settings.blob_url)
    try:
        async with db.uow() as uow:
            await demo.load_demo(uow)
            await create_demo_meeting(uow, blobs)
            await demo.load_demo_documents(uow, blobs)
            token = await identity.create_token(uow, None, await identity.get_user(uow, ORGANISER), "fuzz")
            await uow.commit()
        return token
    finally:
        await blobs.close()
        await db.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, bearer token) of a seeded server running in its own thread."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite+aiosqlite:///{tmp / 'eoffice.db'}"
    in_thread(migrate, url)
    settings = Settings(database_url=url, blob_url=f"file://{tmp}/blobs", broker_url="memory://",
                        secret_key="fuzz-" + uuid.uuid4().hex, upload_limit=256 * 1024)
    token = str(in_thread(asyncio.run, _seed(settings)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        started = threading.Event()
        for _ in range(400):
            if server.started:
                started.set()
                break
            started.wait(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(15)


def _fuzz(operation: object, base: str, token: str, seen: Counter[int]) -> None:
    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: schemathesis.Case) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call(base_url=base, headers=headers, timeout=30)
        seen[response.status_code] += 1
        if REPORT and response.status_code >= 500:
            print("5xx", case.method, case.formatted_path, case.path_parameters, case.query, repr(case.body)[:300])
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    run()


def test_no_operation_answers_with_a_server_error(served: tuple[str, str]) -> None:
    base, token = served
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    failures: list[str] = []
    seen: Counter[int] = Counter()
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1
        try:
            _fuzz(operation, base, token, seen)
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert count > 50, f"only {count} operations in the OpenAPI description"
    if REPORT:
        print(sorted(seen.items()))
    assert sum(n for status, n in seen.items() if status < 300) > count, f"too few successful calls: {seen}"
    assert not failures, "\n\n".join(failures)
