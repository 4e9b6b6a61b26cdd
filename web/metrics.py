"""Prometheus metrics at ``/metrics`` (text exposition format), one registry per app.

What is counted (all names start with ``eoffice_``):

- ``http_requests_total{method, route, status}`` and ``http_request_duration_seconds{method, route}``: the route
  is the template (``/api/meetings/{id:int}``), never the concrete path, so the series stay few.
- ``websocket_connections``: live sockets of this process (``web.hub``).
- ``broker_publish_queue``, ``broker_published_total``, ``broker_publish_dropped_total``,
  ``broker_publish_failures_total``, ``broker_publishing_ok``: the Redis publisher (``storage.pubsub.redis``).
- ``ingest_queue``: jobs waiting in this process's ingest runner; ``ingest_jobs{status}``: jobs by state in the
  database (failed ones included), read at scrape time with a short timeout.

Who may read it: with ``EOFFICE_METRICS_TOKEN`` set, requests carrying ``Authorization: Bearer <token>``;
without it, only clients on the loopback address (a Prometheus agent on the same host, or a reverse proxy
that does not forward ``/metrics``).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eoffice.schema.documents import IngestJob

log = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DB_GAUGE_TIMEOUT = 1.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("eoffice_http_requests", "HTTP requests answered, by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("eoffice_http_request_duration_seconds", "Time to answer an HTTP request",
                                 ["method", "route"], buckets=BUCKETS, registry=self.registry)
        self.state = _StateCollector()
        self.registry.register(self.state)


class _StateCollector(Collector):
    """Gauges read from the app's parts when scraped."""

    def __init__(self) -> None:
        self.app_state: Any = None
        self.ingest_jobs: dict[str, int] = {}

    def collect(self) -> Iterator[Any]:
        state = self.app_state
        if state is None:
            return
        hub = getattr(state, "hub", None)
        ws = GaugeMetricFamily("eoffice_websocket_connections", "Live WebSocket connections of this process")
        ws.add_metric([], len(hub.connections) if hub is not None else 0)
        yield ws
        stats = getattr(getattr(state, "broker", None), "stats", None)
        if stats is not None:
            yield GaugeMetricFamily("eoffice_broker_publish_queue", "Events waiting to be published to Redis",
                                    value=stats.queued)
            yield GaugeMetricFamily("eoffice_broker_publishing_ok", "1 while publishing to Redis succeeds",
                                    value=0 if stats.failing_since is not None else 1)
            yield CounterMetricFamily("eoffice_broker_published", "Events published to Redis", value=stats.sent)
            yield CounterMetricFamily("eoffice_broker_publish_dropped",
                                      "Events dropped because Redis did not take them (clients read the log)",
                                      value=stats.dropped)
            yield CounterMetricFamily("eoffice_broker_publish_failures", "Failed or timed-out publish rounds",
                                      value=stats.failures)
        runner = getattr(getattr(state, "workers", None), "ingest_runner", None)  # web.services
        queue = getattr(runner, "_queue", None)
        if queue is not None:
            yield GaugeMetricFamily("eoffice_ingest_queue", "Ingest jobs waiting in this process",
                                    value=queue.qsize())
        if self.ingest_jobs:
            jobs = GaugeMetricFamily("eoffice_ingest_jobs", "Ingest jobs in the database by status",
                                     labels=["status"])
            for status, count in sorted(self.ingest_jobs.items()):
                jobs.add_metric([status], count)
            yield jobs


async def _refresh_ingest_jobs(request: Request, collector: _StateCollector) -> None:
    try:
        async with asyncio.timeout(DB_GAUGE_TIMEOUT), request.app.state.db.uow(readonly=True) as uow:
            rows = await uow.session.execute(select(IngestJob.status, func.count()).group_by(IngestJob.status))
            collector.ingest_jobs = {str(status): int(count) for status, count in rows.tuples()}
    except Exception as exc:  # metrics must answer when the database does not
        log.info("metrics: ingest job counts not read (%s)", type(exc).__name__)


def _allowed(request: Request) -> bool:
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    """The Prometheus exposition of this process."""
    if not _allowed(request):
        return JSONResponse({"error": "forbidden", "message": "Không được phép đọc số liệu giám sát."},
                            status_code=403)
    registry: Metrics = request.app.state.metrics
    registry.state.app_state = request.app.state
    await _refresh_ingest_jobs(request, registry.state)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


class MetricsMiddleware:
    """Counts every HTTP answer by route template and status, and times it; answers ``/metrics`` itself, ahead
    of the login middleware (its bearer token is not an account's API token)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if scope["path"] == PATH and scope["method"] in ("GET", "HEAD"):
                scope["route"] = ROUTE
                await (await metrics(Request(scope, receive)))(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            metrics_: Metrics | None = getattr(scope["app"].state, "metrics", None)
            if metrics_ is not None:
                route = getattr(scope.get("route"), "path", None) or "(none)"
                metrics_.requests.labels(scope["method"], route, str(status)).inc()
                metrics_.latency.labels(scope["method"], route).observe(time.perf_counter() - start)


PATH = "/metrics"
ROUTE = Route(PATH, metrics)
