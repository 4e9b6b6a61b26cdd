"""The models and the migrations describe the same schema: a database built by the migrations, compared by Alembic's
autogenerate with every table of every package, shows no difference (tables, columns, types, nullability, indexes,
unique constraints, foreign keys) on SQLite and on PostgreSQL. A model changed without its migration fails here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import storage.models  # noqa: F401  (registers every package's tables on Base.metadata)
from storage.db import Base
from storage.migrate import migrate
from tests.conftest import scratch_pg_database


@asynccontextmanager
async def _database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}"
    else:
        async with scratch_pg_database("eoffice_schema") as url:
            yield url


# made by a migration only where PostgreSQL's pg_trgm extension could be created (see eoffice/schema/documents.py)
OPTIONAL_INDEXES = {"ix_documents_sender_trgm"}


def _included(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    return not (kind == "index" and name in OPTIONAL_INDEXES)


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False,
                                                     "include_object": _included})
    return list(compare_metadata(context, Base.metadata))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_migrated_schema_is_the_models_schema(kind: str, tmp_path: Path) -> None:
    async with _database(kind, tmp_path) as url:
        await asyncio.to_thread(migrate, url)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                differences = await conn.run_sync(_differences)
        finally:
            await engine.dispose()
    assert differences == [], "models and migrations disagree:\n" + "\n".join(map(str, differences))
