"""Security headers on every response, as a pure ASGI middleware.

A pure ASGI wrapper (not ``BaseHTTPMiddleware``) only edits the
``http.response.start`` message and passes every body chunk straight
through, so streamed answers (Server-Sent Events, media files) stream as
before.

The pages carry no inline script or style and load nothing from other
origins, so the policy is strict: ``script-src 'self'``. hls.js plays the
webcast from ``blob:`` media sources and may start a ``blob:`` worker.
``frame-ancestors 'none'`` (with ``X-Frame-Options: DENY`` for old
browsers) keeps the console out of other sites' frames, against
clickjacking. The API's own documentation pages (Swagger UI and ReDoc) load
their scripts from a CDN; they keep the framing and sniffing headers but
get no page policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
FRAMING_POLICY = "frame-ancestors 'none'"
# A year; sent only when the server is told it is behind HTTPS (--secure-cookies).
HSTS = "max-age=31536000"
DOCS_PATHS = ("/docs", "/redoc")


def _headers(secure: bool, policy: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"content-security-policy", policy.encode()),
    ]
    if secure:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class SecurityHeaders:
    """Adds the headers to every HTTP response that does not set them itself."""

    def __init__(
        self, app: ASGIApp, secure: bool = False, docs_paths: Iterable[str] = DOCS_PATHS
    ) -> None:
        self.app = app
        self.page_headers = _headers(secure, PAGE_POLICY)
        self.docs_headers = _headers(secure, FRAMING_POLICY)
        self.docs_paths = tuple(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = (
            self.docs_headers
            if any(path == p or path.startswith(p + "/") for p in self.docs_paths)
            else self.page_headers
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
