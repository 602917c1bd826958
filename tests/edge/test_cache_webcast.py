"""The live webcast in real Chromium through the cache tier, over HTTPS and HTTP/2.

The investor registers on the page (the form goes to the origin), then the
page plays the call from the cache: hls.js's blocking reloads and parts are
answered by Varnish behind hitch. A sipp speaker's tone bursts are heard in
the page; the delay from the bridge to the page is printed, as the direct
test (tests/telephony/test_webcast.py) prints it without the tier.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.edge.conftest import CachedServer
from tests.support.chromium import launch
from tests.support.webcast_audio import hear_live
from tests.telephony.conftest import need

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.serial]


def test_a_registered_browser_plays_the_call_through_the_tier(
    cached: CachedServer, tmp_path: Path
) -> None:
    need("sipp")
    server = cached.server
    event = server.create_event(starts_in=timedelta(minutes=-1))  # registration required
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    before = cached.origin_requests(f"/webcast/{event.id}/live/")
    with launch() as browser:
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        url = f"{cached.https_url}/events/{event.id}/webcast"
        answer = page.goto(url)
        assert answer is not None and answer.request.url.startswith("https://")
        page.fill("#reg-name", "Ada Analyst")
        page.fill("#reg-email", "ada@example.com")
        page.click("form.register button[type=submit]")
        page.wait_for_url(url)
        protocol = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
        assert protocol == "h2", protocol
        report, talk_seconds = hear_live(server, page, url, event, tmp_path)
        hops = page.evaluate(
            """() => performance.getEntriesByType('resource')
                .filter((r) => r.name.includes('/live/'))
                .map((r) => r.nextHopProtocol)"""
        )
        context.close()
    reached = cached.origin_requests(f"/webcast/{event.id}/live/") - before
    report["through"] = "varnish+hitch, HTTP/2"
    report["origin_requests_for_live_media"] = sum(reached.values())
    print("\nWEBCAST LATENCY THROUGH THE CACHE", json.dumps(report))
    # Every request that went out went over HTTP/2 ('' is one the browser's own cache answered).
    assert "h2" in hops and not set(hops) - {"h2", ""}, set(hops)
    assert report["bridge_to_page_s_p50"] < 2.5, report
    # Each blocking key and part reached the origin about once.
    assert max(reached.values()) <= 2, reached
    assert talk_seconds > 10
