"""Write the torture messages (in the spirit of RFC 4475) to data/torture/, one per file.

Run once to (re)create the files; they are committed. Each entry is the
message and what the server must do with it: a status code, or "drop".
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent / "data" / "torture"

BASE = {
    "Via": "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{n};rport",
    "Max-Forwards": "70",
    "From": "<sip:tester@127.0.0.1>;tag=t{n}",
    "To": "<sip:19135550123@127.0.0.1>",
    "Call-ID": "torture-{n}@127.0.0.1",
    "CSeq": "1 OPTIONS",
}


def request(
    method: str = "OPTIONS",
    uri: str = "sip:19135550123@127.0.0.1",
    body: str = "",
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
    extra: list[str] | None = None,
    length: str | None = None,
) -> str:
    headers = {**BASE, **(replace or {})}
    if method != "OPTIONS" and "CSeq" not in (replace or {}):
        headers["CSeq"] = f"1 {method}"
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in drop]
    lines += extra or []
    lines.append(f"Content-Length: {length if length is not None else len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


CASES: dict[str, tuple[str | bytes, str]] = {
    "plain_options": (request(), "200"),
    "compact_forms": (
        "OPTIONS sip:19135550123@127.0.0.1 SIP/2.0\r\n"
        "v: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{n};rport\r\n"
        "f: <sip:tester@127.0.0.1>;tag=t{n}\r\nt: <sip:19135550123@127.0.0.1>\r\n"
        "i: torture-{n}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
        "200",
    ),
    "folded_header": (
        request(extra=["Subject: a subject\r\n  folded over\r\n\tthree lines"]),
        "200",
    ),
    "odd_whitespace": (
        request(replace={"From": "  <sip:tester@127.0.0.1>  ;  tag=t{n}", "CSeq": "1    OPTIONS"}),
        "200",
    ),
    "lower_case_names": (request().replace("Call-ID", "call-id").replace("CSeq", "cseq"), "200"),
    "unknown_headers": (request(extra=["X-Wild: yes", "NewFangled: value;param=1"]), "200"),
    "multiple_vias": (
        request(
            replace={
                "Via": "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{n};rport, "
                "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKother"
            }
        ),
        "200",
    ),
    "escaped_uri": (request(uri="sip:1913%35550123@127.0.0.1;user=phone"), "200"),
    "unknown_method": (request(method="FROBNICATE"), "501"),
    "register_not_served": (request(method="REGISTER"), "405"),
    "missing_call_id": (request(drop=("Call-ID",)), "drop"),
    "missing_cseq": (request(drop=("CSeq",)), "drop"),
    "missing_from": (request(drop=("From",)), "drop"),
    "cseq_method_mismatch": (request(replace={"CSeq": "1 INVITE"}), "400"),
    "negative_content_length": (request(length="-5"), "400"),
    "content_length_too_big": (request(body="v=0\r\n", length="9000"), "400"),
    "content_length_not_a_number": (request(length="ten"), "400"),
    "body_longer_than_content_length": (request(body="extra bytes", length="0"), "200"),
    "huge_header": (request(extra=["X-Huge: " + "a" * 9000]), "513"),
    "too_many_headers": (request(extra=[f"X-H{i}: {i}" for i in range(150)]), "513"),
    "non_utf8_header": (request().encode().replace(b"tester", b"test\xff\xfer"), "400"),
    "nul_byte": (request().encode().replace(b"tester", b"te\x00ster"), "400"),
    "unknown_scheme": (request(uri="http://example.com/"), "416"),
    "bad_sip_version": (request().replace("SIP/2.0\r\n", "SIP/7.0\r\n", 1), "505"),
    "bad_via": (request(replace={"Via": "HTTP/1.1 whatever"}), "400"),
    "bad_max_forwards": (request(replace={"Max-Forwards": "abc"}), "400"),
    "no_start_line": ("\r\n\r\n", "drop"),
    "binary_garbage": (bytes(range(256)), "drop"),
    "response_nobody_asked_for": (
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnone\r\n"
        "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n"
        "Content-Length: 0\r\n\r\n",
        "drop",
    ),
    "invite_without_sdp": (
        request(method="INVITE", extra=["Contact: <sip:t@127.0.0.1:5099>"]),
        "488",
    ),
    "bye_for_no_dialog": (
        request(method="BYE", replace={"To": "<sip:19135550123@127.0.0.1>;tag=unknown"}),
        "481",
    ),
    "unclosed_angle_bracket": (request(replace={"From": "<sip:tester@127.0.0.1;tag=t{n}"}), "400"),
    "header_without_colon": (request(extra=["This line has no colon"]), "400"),
}


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    index = []
    for name, (message, expected) in CASES.items():
        data = message if isinstance(message, bytes) else message.encode()
        (HERE / f"{name}.sip").write_bytes(data)
        index.append(f'{name} = "{expected}"')
    (HERE / "expected.toml").write_text("\n".join(index) + "\n")


if __name__ == "__main__":
    main()
