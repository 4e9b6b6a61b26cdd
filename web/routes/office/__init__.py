"""JSON API of the e-office, one module per resource: documents (incoming, direction, inbox), tasks,
outgoing drafts, dossiers, reports (search, register export, statistics). Handlers parse, run their
service calls in one unit of work (``plumbing.change`` / ``plumbing.read``), and start background
ingest jobs after the commit. Errors are AppErrors, turned into JSON centrally (web.errors)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from web.routes.office import documents, dossiers, outgoing, reports, tasks
from web.routes.office.plumbing import setup, shutdown, startup

routes: list[BaseRoute] = [*documents.routes, *tasks.routes, *outgoing.routes, *dossiers.routes, *reports.routes]

__all__ = ["routes", "setup", "shutdown", "startup"]
