"""App-level fixtures: a real app (lifespan and all) over the parametrised database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from eoffice import identity
from eoffice.org import Role
from storage.db import Database
from storage.settings import Settings
from tests.conftest import in_thread
from web.app import create_app

PASSWORD = "Mật-khẩu-2026"


def run(coro: object) -> object:
    """Run a coroutine from a sync test, whatever loop pytest may have around."""
    return in_thread(asyncio.run, coro)


async def _add_user(url: str, username: str, roles: list[Role], full_name: str) -> int:
    db = Database(url)
    try:
        async with db.uow() as uow:
            user = await identity.create_user(uow, None, username=username, full_name=full_name,
                                              password=PASSWORD, roles=roles)
            await uow.commit()
            return user.id
    finally:
        await db.dispose()


def add_user(settings: Settings, username: str, *roles: Role, full_name: str = "Nguyễn Văn Ánh") -> int:
    return int(run(_add_user(settings.database_url, username, list(roles) or [Role.SPECIALIST], full_name)))


async def _token(url: str, username: str) -> str:
    db = Database(url)
    try:
        async with db.uow() as uow:
            token = await identity.create_token(uow, None, await identity.get_user(uow, username))
            await uow.commit()
            return token
    finally:
        await db.dispose()


def make_token(settings: Settings, username: str) -> str:
    return str(run(_token(settings.database_url, username)))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_from(page.text)})
    assert r.status_code == 303, r.text


__all__ = ["PASSWORD", "add_user", "client", "csrf_from", "login", "make_token", "replace", "run"]
