"""Recording the video conference (issue 19): start, stop, who may record, and the recorded files.

HTTP (CSRF and auth as everywhere):

- ``GET /api/meetings/{id}/video/recording`` whether the meeting is being recorded, and who may record (everyone in
  the meeting: the room pages show a "Đang ghi hình" badge).
- ``POST /api/meetings/{id}/video/recording/start`` and ``/stop``: the chair (or the chair and the secretary, as the
  chair set with ``POST .../video/recording/policy`` {who: chair | chair_secretary}).
- ``GET /api/meetings/{id}/recordings``: the recorded files (organiser, chair, secretary), one per site and track,
  each with its place on the recording's time line; ``GET .../recordings/{rid}/file`` downloads one (WebM).

Every participant is told: the ``recording.started`` / ``recording.stopped`` events on the meeting's topic, and the
media room's ``state`` message (``recording``) to every connected site.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meetings import recordings
from meetings.meetings import view_context
from web import file_response, media_recording
from web.auth import require_user
from web.contract import Binary, Empty, contract
from web.contract import meetings as c
from web.inputs import json_body, path_id
from web.openapi import describe
from web.routes.media import registry


def _meeting_id(request: Request) -> int:
    return path_id(request, "meeting_id")


async def _announce(request: Request, mid: int) -> None:
    room = registry(request.app).get(mid)
    if room is not None:
        await room.broadcast(room.state())


@contract(ok=c.RecordingStatus)
async def status_endpoint(request: Request) -> JSONResponse:
    """Whether the meeting is being recorded now, and who may start and stop recording."""
    user = require_user(request)
    mid = _meeting_id(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        await view_context(uow, user, mid)
        state = await recordings.recording_state(uow, mid)
    return JSONResponse(state.public())


@describe(responses={"403": {"description": "Chỉ chủ trì (hoặc thư ký, nếu chủ trì cho phép)"},
                     "409": {"description": "Chưa họp, hoặc đang ghi hình"}})
@contract(body=Empty, ok=c.RecordingStatus)
async def start_endpoint(request: Request) -> JSONResponse:
    """Start recording the video conference: every site's camera and microphone, one file each, no re-encoding."""
    user = require_user(request)
    mid = _meeting_id(request)
    async with request.app.state.db.uow() as uow:
        state = await recordings.start(uow, user, mid)
        await uow.commit()
    room = registry(request.app).get(mid)
    if room is not None and state.session is not None:
        media_recording.start(request.app, room, state.session, state.started_at)
    await _announce(request, mid)
    return JSONResponse(state.public())


@describe(responses={"403": {"description": "Chỉ chủ trì (hoặc thư ký, nếu chủ trì cho phép)"},
                     "409": {"description": "Không đang ghi hình"}})
@contract(body=Empty, ok=c.RecordingStatus)
async def stop_endpoint(request: Request) -> JSONResponse:
    """Stop recording; answers once every file is in the meeting's archive."""
    user = require_user(request)
    mid = _meeting_id(request)
    async with request.app.state.db.uow() as uow:
        state = await recordings.stop(uow, user, mid)
        await uow.commit()
    room = registry(request.app).get(mid)
    if room is not None:
        await media_recording.stop(room)
    await _announce(request, mid)
    return JSONResponse(state.public())


@describe(responses={"403": {"description": "Chỉ chủ trì"}})
@contract(body=c.RecordingPolicy, ok=c.RecordingStatus)
async def policy_endpoint(request: Request) -> JSONResponse:
    """The chair's setting: who may record (``chair`` only, or ``chair_secretary``)."""
    user = require_user(request)
    body = await json_body(request)
    async with request.app.state.db.uow() as uow:
        state = await recordings.set_policy(uow, user, _meeting_id(request), str(body.get("who", "")))
        await uow.commit()
    return JSONResponse(state.public())


@describe(responses={"403": {"description": "Chỉ người tổ chức, chủ trì hoặc thư ký"}})
@contract(ok=c.RecordingList)
async def list_endpoint(request: Request) -> JSONResponse:
    """The meeting's recorded files (one per site and track), each placed on its recording's time line."""
    user = require_user(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        files = await recordings.list_files(uow, user, _meeting_id(request))
    return JSONResponse({"recordings": files})


@contract(ok=Binary(("video/webm", "audio/webm"), "Tệp ghi hình (WebM)"), more={304: "Không đổi"})
async def file_endpoint(request: Request) -> Response:
    """One recorded file, as a download."""
    user = await file_response.requester(request)
    async with request.app.state.db.uow(readonly=True) as uow:
        row = await recordings.get_file(uow, user, _meeting_id(request), path_id(request, "rid"))
    name = f"ghi-hinh-{row.meeting_id}-{row.id}-{row.name}-{'video' if row.kind == 'video' else 'am-thanh'}.webm"
    return await file_response.serve_blob(request, user, row.blob_key, name, fallback_name="ghi-hinh.webm",
                                          cache="private, max-age=31536000, immutable", etag=f'"{row.blob_key}"')


routes = [
    Route("/api/meetings/{meeting_id:int}/video/recording", status_endpoint, methods=["GET"]),
    Route("/api/meetings/{meeting_id:int}/video/recording/start", start_endpoint, methods=["POST"]),
    Route("/api/meetings/{meeting_id:int}/video/recording/stop", stop_endpoint, methods=["POST"]),
    Route("/api/meetings/{meeting_id:int}/video/recording/policy", policy_endpoint, methods=["POST"]),
    Route("/api/meetings/{meeting_id:int}/recordings", list_endpoint, methods=["GET"]),
    Route("/api/meetings/{meeting_id:int}/recordings/{rid:int}/file", file_endpoint, methods=["GET"]),
]
