"""The control desk of a running meeting (issue #17): chair, secretary, organiser or an administrator.

``/meetings/{id}/desk``      the page (touch friendly; refreshes itself every few seconds from the JSON below)
``/api/meetings/{id}/desk``  what it shows: each participant's tablet (online now with how many sockets, or
                             dropped with the time it dropped, from ``hub.presence``), the remote sites and their
                             media links as the chair's link panel sees them (``MediaRoom.link_stats``), the
                             open polls' cast / entitled counts (never who voted how), and the database and
                             broker as ``/readyz`` checks them
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eoffice.org import User
from meetings import desk, topics
from meetings.meetings import user_names
from web.auth import login_required, require_user
from web.contract import contract
from web.contract import meetings as c
from web.hub import Hub
from web.openapi import describe
from web.routes.health import service_checks
from web.routes.media import registry
from web.routes.meetings import _json_script, _page, path_id

NO_STORE = {"Cache-Control": "private, no-store"}
REFRESH_SECONDS = 3


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


def _tablet(user_id: int, online: dict[int, int], dropped: dict[int, float]) -> dict[str, Any]:
    if user_id in online:
        return {"status": "online", "connections": online[user_id], "dropped_at": None}
    if user_id in dropped:
        return {"status": "dropped", "connections": 0, "dropped_at": _iso(dropped[user_id])}
    return {"status": "offline", "connections": 0, "dropped_at": None}


async def desk_state(request: Request, user: User, meeting_id: int) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    topic = topics.room(meeting_id)
    online, dropped = await hub.presence.view(topic)  # every process's tablets (web.presence)
    async with request.app.state.db.uow(readonly=True) as uow:
        data = await desk.desk_data(uow, user, meeting_id)
        seated = {p["attendee_id"] for p in data["participants"] if p["attendee_id"]}
        others = await user_names(uow, {uid for uid in set(online) | set(dropped) if uid not in seated})
    tablets = []
    for p in data["participants"]:
        uid = p["attendee_id"]
        if uid is None:
            continue  # a unit's seat nobody answers for yet, or a guest without an account
        name = p["substitute"]["name"] if p["substitute"] and p["substitute"]["id"] == uid else p["name"]
        tablets.append({"participant_id": p["id"], "user_id": uid, "name": name, "title": p["title"],
                        "role_label": p["role_label"], "present": p["present"], **_tablet(uid, online, dropped)})
    for uid, u in sorted(others.items(), key=lambda kv: kv[1].full_name):
        tablets.append({"participant_id": None, "user_id": uid, "name": u.full_name, "title": u.title,
                        "role_label": "", "present": None, **_tablet(uid, online, dropped)})
    room = registry(request.app).get(meeting_id)
    links = room.link_stats() if room is not None else []
    by_id = {link["id"]: link for link in links}
    sites = [{"id": s["id"], "name": s["name"], "operator": s["operator"],
              "link": by_id.get(f"site:{s['id']}")} for s in data["sites"]]
    return {"meeting": data["meeting"], "tablets": tablets, "sites": sites, "links": links, "polls": data["polls"],
            "services": await service_checks(request), "at": dt.datetime.now(dt.UTC).isoformat()}


@describe(responses={"403": {"description": "Chỉ chủ trì, thư ký, người tổ chức hoặc quản trị hệ thống"}})
@contract(ok=c.ControlDesk)
async def api_desk(request: Request) -> JSONResponse:
    """The meeting's control desk: tablets online and dropped, remote sites and their link quality, open polls'
    cast / entitled counts (not who voted how), database and broker health."""
    user = require_user(request)
    return JSONResponse(await desk_state(request, user, path_id(request)), headers=NO_STORE)


@login_required()
async def desk_page(request: Request) -> Response:
    state = await desk_state(request, request.state.user, path_id(request))
    return _page(request, "meeting_desk.html", s=state, m=state["meeting"], state_json=_json_script(state),
                 refresh_seconds=REFRESH_SECONDS)


routes = [
    Route("/meetings/{meeting_id:int}/desk", desk_page, methods=["GET"], name="meeting_desk"),
    Route("/api/meetings/{meeting_id:int}/desk", api_desk, methods=["GET"]),
]
