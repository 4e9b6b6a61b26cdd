"""Per-topic event log: monotonically increasing ``seq`` per topic, bounded history.

A service emits events through its unit of work; at commit they are numbered here, in the
same transaction as the state change, so a number is never handed out for a change that
rolled back, and two server processes never give the same number twice.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, ForeignKey, Integer, String, Table, UniqueConstraint, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, utcnow

EVENT_LOG_SIZE = 1000  # events kept per topic for replay; older clients get a snapshot


class Topic(Base):
    __tablename__ = "topics"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("topic", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(200), ForeignKey("topics.name"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def as_message(self) -> dict[str, Any]:
        return {"topic": self.topic, "seq": self.seq, "type": self.type, "data": self.data,
                "at": self.created_at.isoformat()}


EVENT_TABLE = cast(Table, Event.__table__)


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Topic)


@functools.cache
def _advance_one(dialect: str) -> Any:
    """The upsert for a commit with events on one topic (most commits), with bound parameters: built
    once, so SQLAlchemy compiles it once (a multi-row VALUES list is compiled again on every commit)."""
    ins = _insert(dialect).values(name=bindparam("name"), last_seq=bindparam("count"))
    return ins.on_conflict_do_update(index_elements=[Topic.name],
                                     set_={"last_seq": Topic.last_seq + ins.excluded.last_seq}
                                     ).returning(Topic.name, Topic.last_seq)


async def store_events(session: AsyncSession, pending: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Number and store ``pending`` events; returns the messages to publish after commit."""
    dialect = session.bind.dialect.name  # type: ignore[union-attr]
    by_topic: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for topic, type_, data in pending:
        by_topic[topic].append((type_, data))
    messages: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    now = utcnow()
    names = sorted(by_topic)  # fixed order: no lock-order deadlocks between writers
    # one statement for all the topics: create each or advance it (row locks serialise writers on PostgreSQL)
    if len(names) == 1:
        result = await session.execute(_advance_one(dialect), {"name": names[0], "count": len(by_topic[names[0]])})
    else:
        ins = _insert(dialect).values([{"name": t, "last_seq": len(by_topic[t])} for t in names])
        upsert = ins.on_conflict_do_update(index_elements=[Topic.name],
                                           set_={"last_seq": Topic.last_seq + ins.excluded.last_seq})
        result = await session.execute(upsert.returning(Topic.name, Topic.last_seq))
    lasts = dict(result.tuples().all())
    for topic in names:
        items, last = by_topic[topic], lasts[topic]
        first = last - len(items) + 1
        for offset, (type_, data) in enumerate(items):
            row = {"topic": topic, "seq": first + offset, "type": type_, "data": data, "created_at": now}
            rows.append(row)
            messages.append({"topic": topic, "seq": row["seq"], "type": type_, "data": data, "at": now.isoformat()})
        if last // 100 != (first - 1) // 100 and last > EVENT_LOG_SIZE:
            await session.execute(
                delete(Event).where(Event.topic == topic, Event.seq <= last - EVENT_LOG_SIZE)
            )
    await session.execute(EVENT_TABLE.insert(), rows)  # all the events in one (executemany) statement
    return messages


@dataclass
class Replay:
    events: list[dict[str, Any]]
    last_seq: int
    complete: bool  # False: the client is too far behind, send it a snapshot instead


async def last_seq(session: AsyncSession, topic: str) -> int:
    value = await session.scalar(select(Topic.last_seq).where(Topic.name == topic))
    return value or 0


async def events_since(session: AsyncSession, topic: str, since: int, limit: int = EVENT_LOG_SIZE) -> Replay:
    current = await last_seq(session, topic)
    if since >= current:
        return Replay([], current, True)
    rows = (
        await session.scalars(
            select(Event).where(Event.topic == topic, Event.seq > since).order_by(Event.seq).limit(limit + 1)
        )
    ).all()
    complete = bool(rows) and rows[0].seq == since + 1 and len(rows) <= limit
    return Replay([r.as_message() for r in rows] if complete else [], current, complete)
