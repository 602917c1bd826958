"""The registration gate through real Varnish: one reading of the cookie, and the gate stays shut.

Varnish and the origin once read ``cb_wc_<event>`` differently: a registered
browser that sent ``cb_wc_1 =VALUE`` was "no cookie" to the tier and
"registered" to the origin, whose "allowed" was then kept under the tier's
no-cookie key, for every unregistered browser. Here the same Cookie headers
go, byte for byte, to the tier and straight to the origin (from an address
that is not a cache node, so the origin reads them itself), and the two must
agree; and the odd forms, sent by a registered browser first, must leave the
cookie-less refused.
"""

from __future__ import annotations

import itertools
import re
import socket
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.edge.conftest import CachedServer
from tests.slides.pdfs import pdf

PART = re.compile(r'#EXT-X-PART:[^\n]*URI="([^"]+)"')
# Not a cache node: the origin reads this client's Cookie itself.
STRANGER = "127.0.0.2"


def ask(
    port: int,
    path: str,
    cookies: Sequence[str],
    source: str = "127.0.0.1",
    more: Sequence[str] = (),
) -> int:
    """GET ``path``, one Cookie header per item exactly as written, and ``more``; the status."""
    head = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "".join(f"Cookie: {cookie}\r\n" for cookie in cookies)
        + "".join(f"{line}\r\n" for line in more)
        + "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), 10, source_address=(source, 0)) as sock:
        sock.sendall(head.encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class LiveEvent:
    """A live webcast that asks for registration, with a deck, and one registered browser.

    Use it in a ``with``: the call ends after, so the server's later tests do
    not share its media plane with a webcast nobody listens to.
    """

    def __init__(self, cached: CachedServer) -> None:
        self.server = server = cached.server
        record = server.create_event(starts_in=timedelta(minutes=-1))  # registration required
        self.id = record.id
        deck = server.api(
            "POST",
            f"/api/events/{self.id}/deck",
            files={"deck": ("deck.pdf", pdf(2), "application/pdf")},
            timeout=60,
        )
        assert deck.status_code == 201, deck.text
        assert server.api("POST", f"/api/events/{self.id}/start").status_code == 200
        self.value = cached.register(self.id, "Ada Analyst").split("=", 1)[1]
        self.cookie = f"cb_wc_{self.id}={self.value}"
        self.playlist = f"/webcast/{self.id}/live/index.m3u8"
        self.slide = f"/webcast/{self.id}/slides/1.png"
        self.slides = f"/api/events/{self.id}/slides"
        self.access = f"/webcast/{self.id}/access"

        def first_part() -> str | None:
            answer = httpx.get(
                cached.http_url + self.playlist, headers={"Cookie": self.cookie}, timeout=5
            )
            found = PART.search(answer.text) if answer.status_code == 200 else None
            return found.group(1) if found else None

        self.part = f"/webcast/{self.id}/live/" + server.wait_for(first_part, timeout=30)

    def __enter__(self) -> LiveEvent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.api("POST", f"/api/events/{self.id}/end")


@pytest.fixture
def event(cached: CachedServer) -> Iterator[LiveEvent]:
    """A live event of its own: nobody cookie-less has asked for it yet."""
    with LiveEvent(cached) as live:
        yield live


def test_the_tier_and_the_origin_read_the_same_cookie_headers_alike(
    cached: CachedServer, event: LiveEvent
) -> None:
    tier, origin = _port(cached.http_url), cached.origin_port
    other = "wl_" + "Z" * 32 + "." + "0" * 32  # well-formed, signed by nobody
    names = [
        f"cb_wc_{event.id}",
        f"CB_WC_{event.id}",
        f"Cb_wc_{event.id}",
        f"cb%5Fwc_{event.id}",
        f"cb_wc%5f{event.id}",
        f"cb_wc_0{event.id}",
        f"cb_wc_%3{event.id}" if event.id < 10 else f"cb_wc_{event.id}%20",
    ]
    values = [
        event.value,
        f'"{event.value}"',
        "",
        event.value.replace(".", "%2E"),
        event.value.upper(),
        event.value[:-1],
        other,
        "garbage",
    ]
    pad = st.sampled_from(["", "", "", " ", "\t", "  ", " \t"])
    gate_crumb = st.builds(
        lambda name, before, after, value, tail: f"{name}{before}={after}{value}{tail}",
        st.one_of(st.just(names[0]), st.sampled_from(names)),
        pad,
        pad,
        st.one_of(st.just(event.value), st.sampled_from(values)),
        pad,
    )
    other_crumb = st.sampled_from(
        [f"cb_wc_{event.id + 1}={other}", f"cb_wc_{event.id + 1} ={other}", f"cb_wc_{event.id}"]
    )
    separator = st.sampled_from(["; ", "; ", "; ", "; ", ";", ";  ", ";\t", ", "])

    @st.composite
    def cookie_headers(draw: st.DrawFn) -> list[str]:
        crumbs = draw(st.lists(gate_crumb, max_size=3)) + draw(st.lists(other_crumb, max_size=1))
        fillers = draw(st.sampled_from([0, 0, 1, 3, 40, 300]))
        crumbs += [f"f{n}=v{n}" for n in range(fillers)] + draw(
            st.lists(st.sampled_from(["e=", 'q="x y"', "p=a%3Bb", "n", "u=\xfc\xe9"]), max_size=2)
        )
        crumbs = draw(st.permutations(crumbs))
        sep = draw(separator)
        joined = ""
        for n, crumb in enumerate(crumbs):
            odd = crumb.lower().startswith("cb") and draw(st.booleans())
            joined += ("" if n == 0 else draw(separator) if odd else sep) + crumb
        # Split into one to three Cookie headers at separators.
        parts = joined.split("; ")
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(parts) - 1)), max_size=2)))
        bounds = [0, *[c for c in cuts if c < len(parts)], len(parts)]
        return ["; ".join(parts[a:b]) for a, b in itertools.pairwise(bounds)]

    outcomes: Counter[tuple[int, int]] = Counter()

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(cookie_headers())
    @example([event.cookie])
    @example([f"cb_wc_{event.id} ={event.value}"])
    @example([f"cb_wc_{event.id}\t={event.value}"])
    @example([f'cb_wc_{event.id}="{event.value}"'])
    @example([f"cb_wc_{event.id}=; {event.cookie}"])
    @example([f"cb_wc_{event.id}=", event.cookie])
    @example(["a=1", event.cookie])
    @example(["; ".join([*(f"f{n}=v{n}" for n in range(300)), event.cookie])])
    @example([])
    @example([f"u=\xfc\xe9; {event.cookie}"])
    def agree(headers: list[str]) -> None:
        through_tier = ask(tier, event.playlist, headers)
        by_hand = ask(tier, event.access, headers)
        straight = ask(origin, event.playlist, headers, source=STRANGER)
        outcomes[(through_tier, straight)] += 1
        assert through_tier in (200, 403), (headers, through_tier)
        assert (through_tier == 200) == (straight == 200), (headers, through_tier, straight)
        assert (by_hand == 204) == (through_tier == 200), (headers, by_hand, through_tier)

    agree()
    print("\nGATE AGREEMENT (tier, origin): count", dict(outcomes))
    assert outcomes[(200, 200)] and outcomes[(403, 403)], outcomes


ODD_FORMS = [
    "cb_wc_{id} ={value}",
    "cb_wc_{id}\t={value}",
    "cb_wc_{id}= {value}",
    'cb_wc_{id}="{value}"',
    "cb_wc_{id}=; cb_wc_{id}={value}",
    "a=1; cb_wc_{id} ={value}; b=2",
    "CB_WC_{id}={value}",
    "cb%5Fwc_{id}={value}",
]


def test_odd_cookie_forms_from_a_registered_browser_leave_the_gate_shut(
    cached: CachedServer, event: LiveEvent
) -> None:
    tier = _port(cached.http_url)
    gated = [event.playlist, event.part, event.slide, event.slides, event.access]
    # The registered browser, before anyone cookie-less has asked: its odd
    # forms (also with the Cookie split in two headers), and its own cookie
    # asked of /access by hand.
    answers: dict[str, int] = {}
    for form in ODD_FORMS:
        cookie = form.format(id=event.id, value=event.value)
        for path in gated:
            answers[f"{cookie} {path}"] = ask(tier, path, [cookie])
        answers[f"split {cookie}"] = ask(tier, event.playlist, cookie.split("; ", 1))
    by_hand = ask(tier, event.access, [event.cookie])
    # Afterwards a cookie-less browser is still refused everything.
    cookieless = {path: ask(tier, path, []) for path in gated}
    cookieless |= {f"theme {path}": ask(tier, path, ["theme=dark"]) for path in gated}
    assert set(cookieless.values()) == {403}, cookieless
    status = httpx.get(f"{cached.http_url}/api/events/{event.id}/webcast", timeout=5)
    assert status.status_code == 200 and status.json()["may_listen"] is False
    # The odd forms were refused at the tier, never passed on.
    assert set(answers.values()) == {403}, {k: v for k, v in answers.items() if v != 403}
    # The browser's own cookie, as browsers send it, plays.
    assert by_hand == 204
    for path in (event.playlist, event.part, event.slide, event.slides):
        assert ask(tier, path, [event.cookie]) == 200, path


def test_the_origin_decides_the_tiers_check_on_the_tiers_value_alone(
    cached: CachedServer,
) -> None:
    event = cached.server.create_event(starts_in=timedelta(minutes=5))  # registration required
    cookie = cached.register(event.id, "Ada Analyst")
    value = cookie.split("=", 1)[1]
    url = f"http://127.0.0.1:{cached.origin_port}/webcast/{event.id}/access"

    def access(source: str, headers: dict[str, str]) -> httpx.Response:
        # The tier reaches the origin on its own Unix socket; anyone else on its TCP port.
        transport = (
            httpx.HTTPTransport(uds=str(cached.origin_socket))
            if source == "tier"
            else httpx.HTTPTransport(local_address=source)
        )
        with httpx.Client(transport=transport, timeout=5) as client:
            return client.get(url, headers=headers)

    # From the tier: the value it sends decides, and is named back.
    granted = access("tier", {"X-CB-Gate-Cookie": value})
    assert granted.status_code == 204 and granted.headers["x-cb-gate-decided"] == value
    refused = access("tier", {"X-CB-Gate-Cookie": "", "Cookie": cookie})
    assert refused.status_code == 403 and refused.headers["x-cb-gate-decided"] == ""
    # From the tier without its value: refused, and not for the tier to keep.
    unsaid = access("tier", {"Cookie": cookie})
    assert unsaid.status_code == 403 and "surrogate-control" not in unsaid.headers
    # From anyone else the header means nothing: their Cookie is read, by the same rule;
    # a process on the origin's own machine, at its TCP port, is anyone else too.
    assert access("127.0.0.1", {"X-CB-Gate-Cookie": value}).status_code == 403
    assert access(STRANGER, {"X-CB-Gate-Cookie": value}).status_code == 403
    assert access(STRANGER, {"Cookie": cookie}).status_code == 204
    assert access(STRANGER, {"Cookie": cookie.replace("=", " =", 1)}).status_code == 403
