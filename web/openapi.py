"""OpenAPI description built from the app's own /api routes.

Each endpoint's docstring gives the summary (first line) and description; an endpoint may
add details (request body, parameters, responses) with the ``@describe`` decorator. Paths,
methods and path parameters come from the routes themselves, so the description cannot
drift from what is served.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute, Mount, Route

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error", "message"],
}


def describe(**spec: Any) -> Callable[[Any], Any]:
    def wrap(fn: Any) -> Any:
        fn.__openapi__ = spec
        return fn

    return wrap


def _walk(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, Route]]:
    out: list[tuple[str, Route]] = []
    for r in routes:
        if isinstance(r, Mount):
            out.extend(_walk(list(r.routes), prefix + r.path))
        elif isinstance(r, Route):
            out.append((prefix + r.path, r))
    return out


def build_openapi(routes: list[BaseRoute], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for path, route in _walk(routes):
        if not path.startswith("/api/"):
            continue
        endpoint = route.endpoint
        doc = inspect.getdoc(endpoint) or ""
        summary, _, description = doc.partition("\n")
        spec = dict(getattr(endpoint, "__openapi__", {}))
        oa_path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path)
        params = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer" if conv == ":int" else "string"}}
            for name, conv in re.findall(r"\{(\w+)(:\w+)?\}", path)
        ]
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            op: dict[str, Any] = {
                "summary": summary.strip(),
                "operationId": f"{endpoint.__name__}_{method.lower()}",
                "responses": {
                    "200": {"description": "OK"},
                    "401": {"description": "Chưa đăng nhập", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                },
            }
            if description.strip():
                op["description"] = description.strip()
            if params:
                op["parameters"] = list(params)
            op.update(spec)
            if op["operationId"] in used:  # one function under two paths: the path tells them apart
                op["operationId"] += "_" + re.sub(r"\W+", "_", oa_path).strip("_")
            used.add(op["operationId"])
            paths.setdefault(oa_path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "eOffice & eCabinet API", "version": version,
                 "description": "API của hệ thống quản lý văn bản điều hành và phòng họp không giấy."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "session": {"type": "apiKey", "in": "cookie", "name": "eo_session"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
    }
