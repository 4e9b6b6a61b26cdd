"""Security headers on every HTTP answer: pages, the JSON API, errors, static files.

A pure ASGI middleware (it only adds headers to ``http.response.start``; WebSocket scopes pass untouched, so
the hub's frame writer is not in its way). A header the handler set itself wins: file answers
(``web.file_response``) carry their own, stricter, sandboxing CSP.

The page CSP has no ``'unsafe-inline'`` for script: every script is a file under /static/ (JSON data for a page
sits in ``<script type="application/json">``, which is not run). Styles may be inline (``style=`` attributes in
the templates); images may be ``data:``/``blob:`` (the reader, charts); WebSockets go to the same host.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(self), display-capture=(self), geolocation=()"),
]
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; font-src 'self'; connect-src 'self'{ws}; worker-src 'self' blob:; "
            "frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'{forms}; frame-ancestors 'none'")


def page_csp(host: str, form_origins: list[str] | tuple[str, ...] = ()) -> str:
    """The CSP for pages served on ``host``. ``connect-src 'self'`` covers ws:/wss: to the same host in
    current browsers; the explicit entries are for older tablet browsers (Safari before 15.4).
    ``form_origins``: other origins a form's answer may redirect to (the OpenID Provider's logout: browsers apply
    form-action to the redirects after a form is sent)."""
    safe_host = host if host and all(c.isalnum() or c in ".-:[]" for c in host) else ""
    ws = f" ws://{safe_host} wss://{safe_host}" if safe_host else ""
    forms = "".join(f" {o}" for o in form_origins if o and all(c.isalnum() or c in ".-:/[]" for c in o))
    return PAGE_CSP.format(ws=ws, forms=forms)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in STATIC_HEADERS if h[0] not in present)
                if b"content-security-policy" not in present:
                    host = ""
                    for name, value in scope.get("headers", ()):
                        if name == b"host":
                            host = value.decode("latin-1")
                            break
                    oidc = getattr(getattr(scope.get("app"), "state", None), "oidc", None)
                    forms = oidc.known_origins() if oidc is not None else ()
                    headers.append((b"content-security-policy", page_csp(host, forms).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
