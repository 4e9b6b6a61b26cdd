"""OpenAPI description built from the app's own /api routes and their typed contract.

Each endpoint's docstring gives the summary (first line) and description. What an operation takes
and answers comes from its ``@contract`` (web.contract: pydantic models, which also validate the
requests), so the schemas under ``components/schemas`` are the ones requests are checked against.
An endpoint may add details (header parameters, extra answers) with ``@describe``. Paths, methods
and path parameters come from the routes themselves, so the description cannot drift from what is
served.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Mount, Route

from web.contract.core import Binary, Error, Operation, Redirect, operations

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF.format(model="Error")}
ERRORS = {
    "400": "Dữ liệu gửi lên không hợp lệ",
    "401": "Chưa đăng nhập",
    "403": "Không có quyền",
    "404": "Không tìm thấy",
    "409": "Xung đột trạng thái",
    "413": "Vượt quá giới hạn kích thước",
}
# kept for callers that describe an error answer by hand
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
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


def _ref(model: type[BaseModel], models: set[type[BaseModel]]) -> dict[str, Any]:
    models.add(model)
    return {"$ref": REF.format(model=model.__name__)}


def _binary(b: Binary) -> dict[str, Any]:
    return {t: {"schema": {"type": "string", "format": "binary"}} for t in b.media_types}


def _answer(answer: Any, description: str, models: set[type[BaseModel]]) -> dict[str, Any]:
    if isinstance(answer, type) and issubclass(answer, BaseModel):
        if issubclass(answer, Error):
            return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
        return {"description": description or (inspect.getdoc(answer) or "").partition("\n")[0] or "OK",
                "content": {"application/json": {"schema": _ref(answer, models)}}}
    if isinstance(answer, Binary):
        return {"description": answer.description or description or "Tệp", "content": _binary(answer)}
    if isinstance(answer, Redirect):
        return {"description": answer.description}
    if isinstance(answer, str):  # an error answer described in words
        return {"description": answer, "content": {"application/json": {"schema": ERROR_REF}}}
    return {"description": description or "Xong, không có nội dung"}


def _contract(op: Operation, method: str, has_params: bool, models: set[type[BaseModel]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    body = op.body
    if isinstance(body, Binary):
        out["requestBody"] = {"required": True, "content": _binary(body)}
    elif body is not None:
        required = any(f.is_required() for f in body.model_fields.values())
        out["requestBody"] = {"required": required, "content": {"application/json": {"schema": _ref(body, models)}}}
    responses: dict[str, Any] = {str(op.status): _answer(op.ok, "OK", models)}
    for status, answer in op.more.items():
        responses[str(status)] = _answer(answer, ERRORS.get(str(status), "OK"), models)
    errors = ["401"]
    if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
        errors += ["400", "403"]
    if has_params:
        errors.append("404")
    for code in errors:
        responses.setdefault(code, _answer(ERRORS[code], "", models))
    out["responses"] = dict(sorted(responses.items()))
    return out


def build_openapi(routes: list[BaseRoute], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    models: set[type[BaseModel]] = set()
    for path, route in _walk(routes):
        if not path.startswith("/api/"):
            continue
        endpoint = route.endpoint
        doc = inspect.getdoc(endpoint) or ""
        summary, _, description = doc.partition("\n")
        spec = dict(getattr(endpoint, "__openapi__", {}))
        contract = operations(endpoint)
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
                "responses": {"200": {"description": "OK"}, "401": _answer(ERRORS["401"], "", models)},
            }
            if description.strip():
                op["description"] = description.strip()
            if params:
                op["parameters"] = list(params)
            declared = contract.get(method) or contract.get("*")
            if declared is not None:
                op.update(_contract(declared, method, bool(params), models))
                if declared.choices and params:
                    op["parameters"] = [
                        {**p, "schema": {"type": "string", "enum": list(declared.choices[p["name"]])}}
                        if p["name"] in declared.choices else p for p in params]
            extra = dict(spec)
            responses = extra.pop("responses", {})
            if "parameters" in extra:
                extra["parameters"] = [*op.get("parameters", []), *extra["parameters"]]
            op.update(extra)
            for status, answer in responses.items():  # @describe's words for an answer the contract already types
                op["responses"].setdefault(status, {}).update(
                    {k: v for k, v in answer.items() if k != "content" or "content" not in op["responses"][status]})
            for status, answer in op["responses"].items():  # every error answer has the one error shape
                if status.startswith(("4", "5")) and "content" not in answer:
                    answer["content"] = {"application/json": {"schema": ERROR_REF}}
            op["responses"] = dict(sorted(op["responses"].items()))
            if op["operationId"] in used:  # one function under two paths: the path tells them apart
                op["operationId"] += "_" + re.sub(r"\W+", "_", oa_path).strip("_")
            used.add(op["operationId"])
            paths.setdefault(oa_path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "eOffice & eCabinet API", "version": version,
                 "description": "API của hệ thống quản lý văn bản điều hành và phòng họp không giấy."},
        "components": {"schemas": schemas(models),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "session": {"type": "apiKey", "in": "cookie", "name": "eo_session"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
    }


def schemas(models: set[type[BaseModel]]) -> dict[str, Any]:
    """JSON Schemas (2020-12, as OpenAPI 3.1 takes them) of the models and of what they refer to."""
    names: dict[str, type[BaseModel]] = {}
    every: list[type[BaseModel]] = [*models, Error]
    for m in every:
        if names.setdefault(m.__name__, m) is not m:
            other = names[m.__name__].__module__
            raise ValueError(f"two contract models are named {m.__name__}: {m.__module__}, {other}")
    ordered = sorted(names.values(), key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "validation") for m in ordered], ref_template=REF)
    return dict(sorted(defs.get("$defs", {}).items()))
