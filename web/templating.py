"""Jinja2 environment: Vietnamese dates (dd/mm/yyyy) in the agency's time zone, role labels."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from eoffice import ink
from eoffice.org import ROLE_LABELS, Role
from storage.settings import Settings
from web.actions import action_label

HERE = Path(__file__).resolve().parent


def make_templates(settings: Settings) -> Jinja2Templates:
    tz = ZoneInfo(settings.timezone)

    def local(value: dt.datetime | None) -> dt.datetime | None:
        return value.astimezone(tz) if value else None

    def date(value: dt.datetime | dt.date | None) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            value = value.astimezone(tz)
        return value.strftime("%d/%m/%Y")

    def datetime(value: dt.datetime | None) -> str:
        return value.astimezone(tz).strftime("%H:%M %d/%m/%Y") if value else ""

    def role_label(role: str) -> str:
        try:
            return ROLE_LABELS[Role(role)]
        except ValueError:
            return role

    def context(request: Request) -> dict[str, object]:
        state = request.scope.get("state", {})
        return {"user": state.get("user"), "csrf_token": state.get("csrf_token", "")}

    templates = Jinja2Templates(directory=HERE / "templates", context_processors=[context])
    templates.env.filters.update(date=date, datetime=datetime, local=local, role_label=role_label,
                                 action_label=action_label)
    templates.env.globals["static_version"] = "7"
    templates.env.globals["ink_paths"] = ink.svg_paths  # bút phê drawn over a page (issue 22)
    return templates
