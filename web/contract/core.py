"""The typed API contract: request and response models (pydantic v2) declared on each /api endpoint.

``@contract(body=..., ok=...)`` on an endpoint does two things:

* before the handler runs, the JSON body is read (``web.inputs.json_body``: size, depth, storable
  strings) and validated against the request model. The models' field types run the same parsers
  as the handlers (``web.inputs``), so a bad value answers the same Vietnamese ``Invalid`` (400,
  ``{"error": "invalid", "message": ..., "field": ...}``); what pydantic itself refuses (a missing
  field, a list where an object belongs) is translated into a Vietnamese message with the field's
  name, never pydantic's English text. The handler then reads the body again (the bytes are kept)
  and parses it as before, so a valid request behaves exactly as it did.
* ``web.openapi`` builds the OpenAPI description from the same models (components/schemas, $ref).

Request models ignore keys they do not know (the handlers always have); response models describe
what the answer always carries and allow more, so a new field in an answer is not a break.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo
from starlette.requests import Request
from starlette.responses import Response

from storage.errors import Invalid
from web import inputs

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Body(BaseModel):
    """A JSON request body: unknown keys are ignored, as the handlers always did."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)


class Empty(Body):
    """No body needed (an empty body or ``{}``); the endpoint does not read one."""


class Out(BaseModel):
    """A JSON answer: what it always carries; answers may add fields."""

    model_config = ConfigDict(extra="allow")


class Ok(Out):
    ok: bool


class Error(BaseModel):
    """Every error answer (web.errors)."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(description="Mã lỗi: invalid, not_found, forbidden, conflict, too_large, ...")
    message: str = Field(description="Thông báo bằng tiếng Việt")
    field: str | None = Field(default=None, description="Trường dữ liệu gây lỗi, nếu có")


@dataclass(frozen=True)
class Binary:
    """A raw request body or a file answer, of these media types."""

    media_types: tuple[str, ...] = ("application/octet-stream",)
    description: str = ""


@dataclass(frozen=True)
class Redirect:
    description: str = "Chuyển hướng"


Answer = type[BaseModel] | Binary | Redirect | None  # None: 204, no content


@dataclass
class Operation:
    body: type[Body] | Binary | None = None
    ok: Answer = None
    status: int = 200
    more: dict[int, Answer | str] = field(default_factory=dict)  # other answers: 200 replay, 304, 409 ...
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path parameters that name an action


def require(*names: str) -> Callable[[dict[str, Any]], None]:
    """Mark fields required in the schema while the handler keeps its own message for a missing one."""

    def extra(schema: dict[str, Any]) -> None:
        schema["required"] = sorted({*schema.get("required", []), *names})

    return extra


# ---- field types: the parsers of web.inputs, with their JSON Schema ---------------------------

def _int(value: Any, info: ValidationInfo) -> int:
    return inputs.req_int(value, info.field_name or "")


def _opt_int(value: Any, info: ValidationInfo) -> int | None:
    return inputs.int_value(value, info.field_name or "", optional=True)


def _id(value: Any, info: ValidationInfo) -> int:
    return inputs.req_id(value, info.field_name or "")


def _ids(value: Any, info: ValidationInfo) -> list[int]:
    return inputs.ids_value(value, info.field_name or "")


def _date(value: Any, info: ValidationInfo) -> dt.date | None:
    return inputs.date_value(value, info.field_name or "")


def _datetime(value: Any, info: ValidationInfo) -> dt.datetime | None:
    return inputs.datetime_value(value, info.field_name or "")


def _text(max_length: int) -> Callable[[Any, ValidationInfo], str]:
    def check(value: Any, info: ValidationInfo) -> str:
        return inputs.str_value(value, info.field_name or "", max_length=max_length)

    return check


def _flag(value: Any) -> bool:
    return bool(value)  # the handlers take any JSON value for what it is worth (``bool(body.get(...))``)


_INT = Field(ge=0, le=inputs.INT_MAX)
_ID = Field(ge=1, le=inputs.ID_MAX)
Int = Annotated[Annotated[int, _INT], BeforeValidator(_int)]
OptInt = Annotated[Annotated[int, _INT] | None, BeforeValidator(_opt_int)]
Id = Annotated[Annotated[int, _ID], BeforeValidator(_id)]
Ids = Annotated[list[Annotated[int, _ID]], Field(max_length=1000), BeforeValidator(_ids)]
Date = Annotated[dt.date | None, BeforeValidator(_date)]
DateTime = Annotated[dt.datetime | None, BeforeValidator(_datetime)]
Flag = Annotated[bool, BeforeValidator(_flag)]


def text(max_length: int = inputs.JSON_MAX_BYTES) -> Any:
    """A string of at most ``max_length`` characters; null means empty."""
    return Annotated[Annotated[str, Field(max_length=max_length)], BeforeValidator(_text(max_length))]


Text = text()


# ---- validation errors in Vietnamese ----------------------------------------------------------

def _field_of(loc: tuple[int | str, ...]) -> str:
    """The body's key at fault (web.inputs names fields by their key, so do we)."""
    return next((p for p in loc if isinstance(p, str)), "body")


def as_invalid(exc: ValidationError) -> Invalid:
    """pydantic's first complaint as the same Vietnamese 400 the parsers give."""
    err = exc.errors(include_url=False, include_input=False)[0]
    name = _field_of(tuple(err["loc"]))
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        message = f"Thiếu giá trị «{name}»."
    elif kind.startswith("int") or kind == "greater_than_equal" or kind == "less_than_equal":
        message = f"Giá trị «{name}» phải là số nguyên hợp lệ."
    elif kind.startswith(("float", "decimal")) or kind == "finite_number":
        message = f"Giá trị «{name}» phải là số."
    elif kind.startswith("bool"):
        message = f"Giá trị «{name}» phải là true hoặc false."
    elif kind == "string_too_long":
        message = f"«{name}» quá dài (tối đa {ctx.get('max_length')} ký tự)."
    elif kind.startswith("string"):
        message = f"«{name}» phải là chuỗi."
    elif kind == "too_long":
        message = f"«{name}» có quá nhiều phần tử (tối đa {ctx.get('max_length')})."
    elif kind.startswith(("list", "tuple", "set")):
        message = f"«{name}» phải là một danh sách."
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        message = f"«{name}» phải là một đối tượng." if name != "body" else "Nội dung JSON phải là một đối tượng."
    elif kind in ("literal_error", "enum"):
        message = f"Giá trị «{name}» không hợp lệ (chọn một trong: {ctx.get('expected', '')})."
    else:
        message = f"Giá trị «{name}» không hợp lệ."
    return Invalid(message, field=name)


def validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise as_invalid(exc) from None


# ---- the decorator ----------------------------------------------------------------------------

Endpoint = Callable[[Request], Awaitable[Response]]


def contract(*, body: type[Body] | Binary | None = None, ok: Answer = None, status: int = 200,
             method: str = "*", more: dict[int, Answer | str] | None = None,
             choices: dict[str, tuple[str, ...]] | None = None) -> Callable[[Endpoint], Endpoint]:
    """Declare what ``method`` (every method of the route when ``*``) takes and answers.

    ``ok`` is the model of the ``status`` answer (a ``Binary`` for a file, None for 204); ``more``
    adds other answers (a model, or a description for an error answer); ``choices`` the values a path
    parameter such as ``{action}`` takes. Stack one per method when a function serves several.
    """
    op = Operation(body, ok, status, dict(more or {}), dict(choices or {}))

    def wrap(fn: Endpoint) -> Endpoint:
        ops: dict[str, Operation] | None = getattr(fn, "__contract__", None)
        if ops is not None:  # another method of the same function: the wrapper is already there
            ops[method.upper()] = op
            return fn

        @functools.wraps(fn)
        async def checked(request: Request) -> Response:
            found = ops_of.get(request.method) or ops_of.get("*")
            model = found.body if found is not None else None
            # an anonymous request is the handler's to refuse (401), whatever it sends
            if (isinstance(model, type) and model is not Empty and request.method in WRITE_METHODS
                    and getattr(request.state, "user", None) is not None):
                validate(model, await inputs.json_body(request))
            return await fn(request)

        ops_of: dict[str, Operation] = {method.upper(): op}
        checked.__contract__ = ops_of  # type: ignore[attr-defined]
        return checked

    return wrap


def operations(endpoint: Any) -> dict[str, Operation]:
    return getattr(endpoint, "__contract__", {})
