"""Everything a reconnecting client needs exists when the app starts, before any request."""

from __future__ import annotations

from starlette.testclient import TestClient

from storage.settings import Settings
from web.app import create_app


def test_topic_authorisers_are_registered_at_startup(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app):
        hub = app.state.hub
        for topic in ("user:1", "meeting:1", "document:1", "unit:1"):
            assert hub._lookup(hub._authorizers, topic) is not None, topic
        assert hub._lookup(hub._snapshots, "meeting:1") is not None
        assert app.state.workers.ingest_runner is not None
