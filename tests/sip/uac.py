"""Build the requests a caller sends, as wire bytes, for in-memory endpoint tests."""

from __future__ import annotations

import secrets

OFFER = (
    "v=0\r\n"
    "o=analyst 2890844526 2890844526 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


class Uac:
    """One caller's side of one call; it remembers tags and CSeq as a phone would."""

    def __init__(self, port: int = 5070, number: str = "19135550123") -> None:
        self.addr = ("127.0.0.1", port)
        self.number = number
        self.call_id = secrets.token_hex(8) + "@127.0.0.1"
        self.from_tag = secrets.token_hex(4)
        self.to_tag: str | None = None
        self.cseq = 1
        self.invite_branch = ""

    def _request(
        self,
        method: str,
        branch: str,
        cseq: int,
        body: str = "",
        extra: str = "",
        content_type: str = "application/sdp",
    ) -> bytes:
        to_tag = f";tag={self.to_tag}" if self.to_tag and method not in ("CANCEL",) else ""
        if method == "ACK" and not self.to_tag:
            to_tag = ""
        lines = [
            f"{method} sip:{self.number}@127.0.0.1:5060 SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.addr[1]};branch={branch};rport",
            "Max-Forwards: 70",
            f'From: "Analyst" <sip:analyst@127.0.0.1:{self.addr[1]}>;tag={self.from_tag}',
            f"To: <sip:{self.number}@127.0.0.1>{to_tag}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:analyst@127.0.0.1:{self.addr[1]}>",
        ]
        if extra:
            lines.append(extra)
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def invite(self, body: str = OFFER) -> bytes:
        self.invite_branch = "z9hG4bK" + secrets.token_hex(6)
        return self._request("INVITE", self.invite_branch, self.cseq, body)

    def reinvite(self, body: str) -> bytes:
        self.cseq += 1
        return self._request("INVITE", "z9hG4bK" + secrets.token_hex(6), self.cseq, body)

    def ack_2xx(self) -> bytes:
        return self._request("ACK", "z9hG4bK" + secrets.token_hex(6), self.cseq)

    def ack_error(self) -> bytes:
        return self._request("ACK", self.invite_branch, 1)

    def cancel(self) -> bytes:
        return self._request("CANCEL", self.invite_branch, 1)

    def bye(self) -> bytes:
        self.cseq += 1
        return self._request("BYE", "z9hG4bK" + secrets.token_hex(6), self.cseq)

    def info(self, digit: str) -> bytes:
        self.cseq += 1
        return self._request(
            "INFO",
            "z9hG4bK" + secrets.token_hex(6),
            self.cseq,
            f"Signal={digit}\r\nDuration=160\r\n",
            content_type="application/dtmf-relay",
        )

    def options(self) -> bytes:
        return self._request("OPTIONS", "z9hG4bK" + secrets.token_hex(6), 1)

    def learn(self, response: bytes) -> None:
        """Remember the To tag of a response, as a phone does."""
        for line in response.decode().split("\r\n"):
            if line.lower().startswith("to:") and ";tag=" in line:
                self.to_tag = line.split(";tag=")[1].split(";")[0].strip()
