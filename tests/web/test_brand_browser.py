"""The brand in real Chromium: a logo and colour set through the editor's own fields (the
file chosen as a person would), then the webcast page, the release and the engagement
report at 1366×768 and 390×844: the logo loads, the bar takes the colour, no CSP refusal,
nothing wider than a phone. Screenshots go to $CALLBRIDGE_SCREENSHOTS or the tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import EventState
from callbridge.store.events import EventStore
from tests.brand.test_logo import GOOD_SVG
from tests.web.conftest import LiveServer
from tests.web.test_browser import make_event, no_horizontal_overflow
from tests.web.test_editor import PHONE, WIDE, _csp, _field, _log_in, _shots, saved

pytestmark = pytest.mark.browser


def _brand_shown(page: Any, accent_rgb: str) -> None:
    page.wait_for_function(
        "() => { const i = document.querySelector('#brand img.brand-logo');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    border = page.evaluate("getComputedStyle(document.getElementById('brand')).borderTopColor")
    assert border == accent_rgb
    box = page.locator("#brand img.brand-logo").bounding_box()
    assert box is not None and 30 <= box["height"] <= 48 and box["width"] > 60


def test_the_brand_set_in_the_editor_shows_on_the_public_pages(
    chromium: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    shots = _shots(tmp_path)
    record = make_event(live_server)
    events: EventStore = live_server.app.state.events
    context = chromium.new_context(viewport=WIDE, locale="en-US")
    context.add_init_script(
        "window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        _log_in(page, live_server, f"/console/events/{record.id}/edit")
        _field(page, "company.accent").fill("#7A1F3D")
        page.set_input_files(
            "#f-company-logo",
            files=[{"name": "acme.svg", "mimeType": "image/svg+xml", "buffer": GOOD_SVG}],
        )
        swatch = page.locator("[name='company.accent'] + .swatch")
        assert swatch.evaluate("s => getComputedStyle(s).backgroundColor") == "rgb(122, 31, 61)"
        page.locator("#sec-brand").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(shots / "brand-editor-1366.png"))
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url(saved)
        assert events.get(record.id).company.accent == "#7a1f3d"
        accent = "rgb(122, 31, 61)"

        for size, tag in ((WIDE, "1366"), (PHONE, "390")):
            page.set_viewport_size(size)
            for name, path in (
                ("webcast", f"/events/{record.id}/webcast"),
                ("release", f"/events/{record.id}/announcement"),
            ):
                page.goto(f"{live_server.url}{path}")
                _brand_shown(page, accent)
                # The site's own accent (links, buttons) takes the brand's colour too.
                link = page.locator("main a[href]").first
                assert link.evaluate("a => getComputedStyle(a).color") == accent
                assert no_horizontal_overflow(page), (name, tag)
                page.screenshot(path=str(shots / f"brand-{name}-{tag}.png"), full_page=True)
                assert _csp(page) == [], (name, tag)

        events.set_state(record.id, EventState.LIVE)
        events.set_state(record.id, EventState.ENDED)
        for size, tag in ((WIDE, "1366"), (PHONE, "390")):
            page.set_viewport_size(size)
            page.goto(f"{live_server.url}/console/events/{record.id}/report")
            _brand_shown(page, accent)
            assert page.locator("#report-tiles .tile").count() == 6
            assert no_horizontal_overflow(page), tag
            page.screenshot(path=str(shots / f"brand-report-{tag}.png"), full_page=True)
            assert _csp(page) == [], tag
        assert errors == []
    finally:
        context.close()
