"""The application factory: routes, middleware and lifespan assembled explicitly."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from eoffice import audit
from eoffice.directory import DirectoryConfig
from storage import keys
from storage.blobs import open_blob_store
from storage.db import Database
from storage.pubsub import open_broker
from storage.settings import Settings
from web import metrics, shutdown, templating
from web.auth import AuthMiddleware
from web.db_unavailable import DatabaseUnavailable
from web.drain import CloseWhileDraining
from web.errors import EXCEPTION_HANDLERS
from web.file_response import FilesOriginGuard
from web.gc_policy import GcPolicy
from web.hub import Hub
from web.metrics import MetricsMiddleware
from web.request_id import RequestId
from web.routes import (
    account,
    admin,
    admin_units,
    api,
    calendar,
    consultations,
    delegations,
    desk,
    edxml,
    exchange,
    exchange_pages,
    health,
    media,
    meetings,
    notifications,
    office,
    office_more,
    office_pages,
    pages,
    pwa,
    recordings,
    screen,
    sfu_relay,
    sso,
    two_factor,
    voting,
    ws,
)
from web.routes import (
    annotations as annotation_routes,
)
from web.security_headers import SecurityHeaders
from web.services import Workers, close_revoked, wire_notifications

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)
QUIET_SECONDS = 5.0  # no live event for this long: a good moment for the collector's long pass

# Every area contributes a `routes` list; API routes live under /api/.
ROUTE_MODULES = [pages, account, admin, admin_units, delegations, api, health, ws, screen, desk, meetings, office,
                 annotation_routes, media, voting, office_pages, office_more, edxml, exchange, exchange_pages,
                 notifications, calendar, consultations, two_factor, pwa, sso, recordings, sfu_relay]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        broker = open_broker(settings.broker_url)
        db = Database(settings.database_url, publisher=broker.publish)
        keys.register(db.url, settings.secret_key)  # the audit chain's MAC key, secret polls' key wrapping
        await audit.seal_legacy(db)
        blobs = open_blob_store(settings.blob_url)
        wire_notifications(db, settings)  # eoffice.notifications: events become people's notifications
        hub = Hub(db, broker, settings)
        app.state.db, app.state.blobs, app.state.broker, app.state.hub = db, blobs, broker, hub
        # web.services: the one owner of background workers
        workers = app.state.workers = Workers.create(db, blobs, settings, close=functools.partial(
            close_revoked, hub, "account deactivated"))
        await hub.start()
        # Areas register their topic authorisers, snapshots and workers now, before any client
        # connects: a tablet reconnecting after a restart subscribes before it makes a request.
        # Hooks an area module may define: setup(app) (sync: hub authorisers, snapshots),
        # async startup(app) (recover background work) and async shutdown(app).
        for module in ROUTE_MODULES:
            if hasattr(module, "setup"):
                module.setup(app)
        for module in ROUTE_MODULES:
            if hasattr(module, "startup"):
                await module.startup(app)
        await workers.start()
        gc_policy = GcPolicy(busy=lambda: time.monotonic() - hub.last_dispatch < QUIET_SECONDS)
        if settings.gc_freeze:
            gc_policy.start()
        try:
            yield
        finally:
            # each step bounded (web.shutdown): one that hangs is logged by name and the rest still close
            if settings.gc_freeze:
                await shutdown.step("gc policy", gc_policy.stop)
            await shutdown.step("workers", workers.stop)
            for module in reversed(ROUTE_MODULES):  # video rooms, background workers: before the hub
                if hasattr(module, "shutdown"):
                    await shutdown.step(module.__name__, functools.partial(module.shutdown, app))
            await shutdown.step("hub", hub.stop)
            await shutdown.step("broker", broker.close)
            await shutdown.step("blobs", blobs.close)
            await shutdown.step("database", db.dispose)

    routes: list[BaseRoute] = []
    for module in ROUTE_MODULES:
        routes.extend(module.routes)
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))

    app = Starlette(
        routes=routes,
        # SecurityHeaders next: errors and refusals from the others get the headers too (web.security_headers);
        # FilesOriginGuard keeps the separate files origin, when configured, to file answers (web.file_response)
        # MetricsMiddleware outermost: every answer is counted, refusals and errors included (web.metrics)
        # RequestId first of all: every log line of a request carries its id (web.request_id)
        # CloseWhileDraining: after SIGTERM every answer ends its keep-alive connection (web.drain)
        middleware=[Middleware(RequestId), Middleware(CloseWhileDraining), Middleware(MetricsMiddleware),
                    Middleware(SecurityHeaders),
                    Middleware(FilesOriginGuard, settings=settings),
                    Middleware(GZipMiddleware, minimum_size=2048),
                    # outside AuthMiddleware (it reads sessions): a lost database is a 503, a lost connection a retry
                    Middleware(DatabaseUnavailable), Middleware(AuthMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.oidc = None  # the OpenID Provider's client when configured (web.routes.sso.setup)
    app.state.directory = DirectoryConfig.from_settings(settings)  # LDAP login and sync (None: not configured)
    app.state.metrics = metrics.Metrics()
    app.state.templates = templating.make_templates(settings)
    return app
