"""The clerk's page of the exchange between installations (#16): packages received from peers, refused ones (the
reason, the quarantined file as a download, re-import) and those sent, with their delivery attempts, the statuses
that came back and re-send. Handlers call ``eoffice.exchange``; the JSON is ``web.routes.exchange``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eoffice import exchange
from storage.errors import AppError
from web.auth import login_required
from web.inputs import path_id
from web.routes.office_common import redirect, render


async def _page(request: Request, *, error: str | None = None, ok: str | None = None, status: int = 200) -> Response:
    user = request.state.user
    async with request.app.state.db.uow(readonly=True) as uow:
        received = await exchange.received(uow, user)
        refused = await exchange.refused(uow, user)
        sent = await exchange.sent(uow, user)
    return render(request, "office/exchange.html", status_code=status, section="exchange", error=error, ok=ok,
                  received=received, refused=refused, sent=sent)


@login_required()
async def exchange_page(request: Request) -> Response:
    return await _page(request, ok={"resent": "Đã xếp gói tin để gửi lại ngay.",
                                    "reimported": "Đã nhập lại gói tin."}.get(request.query_params.get("done", "")))


@login_required()
async def resend(request: Request) -> Response:
    try:
        async with request.app.state.db.uow() as uow:
            await exchange.resend(uow, request.state.user, path_id(request, "id"))
            await uow.commit()
    except AppError as exc:
        return await _page(request, error=exc.message, status=exc.status)
    return redirect("/exchange?done=resent")


@login_required()
async def reimport(request: Request) -> Response:
    state = request.app.state
    try:
        async with state.db.uow() as uow:
            result = await exchange.reimport(uow, request.state.user, state.blobs, path_id(request, "id"))
            await uow.commit()
    except AppError as exc:
        return await _page(request, error=exc.message, status=exc.status)
    if not result.ok:
        return await _page(request, error=f"Gói tin vẫn bị từ chối: {result.message}", status=422)
    return redirect("/exchange?done=reimported")


routes: list[BaseRoute] = [
    Route("/exchange", exchange_page, name="office_exchange"),
    Route("/exchange/sent/{id:int}/resend", resend, methods=["POST"]),
    Route("/exchange/refused/{id:int}/reimport", reimport, methods=["POST"]),
]
