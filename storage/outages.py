"""What an error says about the services behind us: the database unreachable, or any backing service (database,
object storage, broker) briefly gone. The web layer answers such errors with a 503 (``web.db_unavailable``); the
background jobs try again later with a back-off (``eoffice.ingest``) instead of failing for good."""

from __future__ import annotations

import errno

from sqlalchemy import exc as sa_exc

from storage.errors import Unavailable

# SQLSTATEs of a lost or refused connection: class 08 (connection exception), admin/crash shutdown, cannot
# connect now (starting up, recovering), too many connections
LOST_STATES = ("08", "57P01", "57P02", "57P03", "53300")
NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EPIPE}
)


def _sqlstate(error: BaseException) -> str:
    return str(getattr(error, "sqlstate", "") or getattr(error, "pgcode", "") or "")


def is_database_unavailable(error: BaseException) -> bool:
    """Does ``error`` (or what caused it) mean the database cannot be reached?"""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError):  # no connection free in the pool in time
            return True
        state = _sqlstate(current)
        if state and (state.startswith(LOST_STATES[0]) or state in LOST_STATES[1:]):
            return True
        if state == "55000" and "not currently accepting connections" in str(current):
            return True
        name = type(current).__name__
        if name in ("ConnectionDoesNotExistError", "ConnectionFailureError", "ClientConnectionFailureError"):
            return True
        if isinstance(current, ConnectionError) or (
            isinstance(current, OSError) and (current.errno in NETWORK_ERRNOS or "connect" in str(current).lower())
        ):
            return True  # refused, reset, unreachable (asyncpg's "Multiple exceptions: ... Connect call failed")
        nxt = getattr(current, "orig", None) if isinstance(current, sa_exc.StatementError) else None
        current = nxt if isinstance(nxt, BaseException) else (current.__cause__ or current.__context__)
    return False


def is_transient(error: BaseException) -> bool:
    """A backing service was briefly unavailable (S3, the database): the same work may well succeed later."""
    return isinstance(error, Unavailable) or is_database_unavailable(error)


__all__ = ["LOST_STATES", "NETWORK_ERRNOS", "is_database_unavailable", "is_transient"]
