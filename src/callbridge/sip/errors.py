"""Protocol errors that carry the answer to send (the h11 habit)."""

from __future__ import annotations

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
}


class SipError(Exception):
    """Raised deep in the parser or the core; the endpoint answers with ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail

    @property
    def reason(self) -> str:
        """A reason phrase that names the problem (safe for a status line)."""
        base = REASONS.get(self.status, "Error")
        clean = "".join(ch for ch in self.detail if ch.isprintable() and ch not in "\r\n")[:80]
        return f"{base} ({clean})" if clean else base
