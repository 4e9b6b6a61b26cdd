"""What a domain package needs from the live hub to wire its topics in: the hooks' signatures and the registry's
methods, as a Protocol (the hub itself lives in ``web``, which domain packages never import)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from eoffice.org import User
from storage.db import UnitOfWork

Authorizer = Callable[[UnitOfWork, User, str], Awaitable[bool]]
Snapshot = Callable[[UnitOfWork, User, str], Awaitable[dict[str, Any]]]
Dependents = Callable[[UnitOfWork, str], Awaitable[set[str]]]
ReplayFilter = Callable[[UnitOfWork, User, str, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


class TopicRegistry(Protocol):
    """The registration side of ``web.hub.Hub``."""

    def add_authorizer(self, prefix: str, fn: Authorizer) -> None: ...

    def add_snapshot(self, prefix: str, fn: Snapshot) -> None: ...

    def add_access_events(self, *types: str) -> None: ...

    def add_access_dependents(self, prefix: str, fn: Dependents) -> None: ...

    def add_replay_filter(self, prefix: str, fn: ReplayFilter) -> None: ...


__all__ = ["Authorizer", "Dependents", "ReplayFilter", "Snapshot", "TopicRegistry"]
