"""The brand through the in-process client: the editor's logo and colour fields (each refusal
named on its field, nothing saved), the logo and stylesheet as served, the brand on the
webcast page and the release, and the engagement report's PDF read back for its figures."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pypdfium2 as pdfium
from fastapi.testclient import TestClient

from callbridge.brand.logo import check_logo
from callbridge.events import form
from callbridge.events.schema import EventRecord
from callbridge.store.brand import BrandStore
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.events import EventStore
from tests.brand.test_logo import GOOD_SVG, NS, png
from tests.web.test_pages import csrf_of, login, make_event, text_of
from tests.web.test_report import T0, _held


def _store(client: TestClient) -> EventStore:
    store: EventStore = client.app.state.events  # type: ignore[attr-defined]
    return store


def _save(
    client: TestClient, record: EventRecord, logo: tuple[str, bytes, str] | None, **changes: str
) -> Any:
    """Post the editor's form for ``record`` with ``changes`` and, if given, a logo file."""
    page = client.get(f"/console/events/{record.id}/edit")
    values = {**form.values_of(record), **changes}
    data = {**values, "csrf_token": csrf_of(page.text), "version": str(record.version)}
    files = (
        {"company.logo": logo} if logo else {"company.logo": ("", b"", "application/octet-stream")}
    )
    return client.post(
        f"/console/events/{record.id}/edit", data=data, files=files, follow_redirects=False
    )


def test_a_refused_logo_is_named_on_its_field_and_nothing_is_saved(client: TestClient) -> None:
    login(client)
    record = make_event(client, title="Q3 results")
    bad = [
        (("logo.png", b"GIF89a" + bytes(64), "image/png"), "neither a PNG nor an SVG"),
        (("big.png", b"\x89PNG\r\n\x1a\n" + bytes(600 * 1024), "image/png"), "at most 512 KB"),
        (
            (
                "evil.svg",
                f'<svg {NS} viewBox="0 0 9 9"><script>alert(1)</script></svg>'.encode(),
                "image/svg+xml",
            ),
            "holds a script",
        ),
    ]
    for logo, reason in bad:
        answer = _save(client, record, logo, **{"event.title": "Typed but not saved"})
        assert answer.status_code == 422, logo[0]
        text = text_of(answer.text)
        # In the summary, linked to the field, and beside the field itself.
        assert f"Logo: the file “{logo[0]}” " in text and reason in text, text[:2000]
        assert 'id="f-company-logo-error"' in answer.text
        assert re.search(
            r'<input type="file" id="f-company-logo"[^>]*aria-invalid="true"', answer.text
        )
        assert 'value="Typed but not saved"' in answer.text  # the typing is kept
    huge = _save(client, record, ("huge.png", bytes(3 * 1024 * 1024), "image/png"))
    assert huge.status_code == 413 and "a logo is at most 512 KB" in huge.text
    assert _store(client).get(record.id).title == "Q3 results"
    assert _store(client).get(record.id).company.logo is None


def test_a_too_light_accent_is_refused_with_a_shade_that_passes(client: TestClient) -> None:
    login(client)
    record = make_event(client, title="Q3 results")
    answer = _save(client, record, None, **{"company.accent": "#66aaff"})
    assert answer.status_code == 422
    text = text_of(answer.text)
    assert "Accent colour: is too light for white text on it (2.4:1" in text
    assert "#4777b2 is the same hue dark enough" in text
    assert _store(client).get(record.id).company.accent is None


def test_a_good_svg_is_sanitised_served_and_shown(client: TestClient) -> None:
    login(client)
    record = make_event(client, title="Q3 results")
    answer = _save(
        client, record, ("acme.svg", GOOD_SVG, "image/svg+xml"), **{"company.accent": "#7A1F3D"}
    )
    assert answer.status_code == 303, text_of(answer.text)[:2000]
    saved = _store(client).get(record.id)
    assert saved.company.accent == "#7a1f3d"
    assert saved.company.logo is not None and saved.company.logo.media_type == "image/svg+xml"
    href = f"/events/{record.id}/logo?v={saved.company.logo.digest}"

    logo = client.get(href)
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/svg+xml"
    assert logo.headers["x-content-type-options"] == "nosniff"
    assert logo.headers["content-security-policy"].startswith(
        "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert "max-age=86400" in logo.headers["cache-control"]
    assert "metadata" not in logo.text and "inkscape" not in logo.text and ">Acme<" in logo.text

    css = client.get(f"/events/{record.id}/brand.css")
    assert css.headers["content-type"].startswith("text/css")
    assert "--accent: #7a1f3d;" in css.text

    page = client.get(f"/events/{record.id}/webcast")
    assert f'<img class="brand-logo" src="{href}" alt="{saved.company.name}"' in page.text
    assert f'href="/events/{record.id}/brand.css?v=7a1f3d"' in page.text
    assert "style=" not in page.text.split('id="brand"')[1][:400]  # nothing our CSP would block

    release = client.get(f"/api/events/{record.id}/announcement.html")
    assert 'src="data:image/svg+xml;base64,' in release.text
    assert "border-top: 4px solid #7a1f3d" in release.text
    assert 'class="brandbar"' in client.get(f"/events/{record.id}/announcement").text

    # The editor shows the logo now and takes it away when asked.
    edit = client.get(f"/console/events/{record.id}/edit")
    assert href in edit.text and 'name="company.logo_remove"' in edit.text
    removed = _save(client, saved, None, **{"company.logo_remove": "on"})
    assert removed.status_code == 303
    assert _store(client).get(record.id).company.logo is None
    assert client.get(href).status_code == 404
    assert 'class="brand-mark"' in client.get(f"/events/{record.id}/webcast").text


def test_the_report_pdf_carries_the_figures_and_the_logo(
    client: TestClient, auth: dict[str, str]
) -> None:
    event_id = _held(client, "Third Quarter 2026 Results")
    CallLog(client.app.state.database).append(  # type: ignore[attr-defined]
        [LogEntry(LogKind.LINE_OPEN, T0 + timedelta(seconds=40), event_id, "p1", actor="operator")]
    )
    brands = BrandStore(client.app.state.database)  # type: ignore[attr-defined]
    brands.set_logo(event_id, check_logo(png(300, 90)))
    assert client.get(f"/api/events/{event_id}/report.pdf").status_code == 401
    answer = client.get(f"/api/events/{event_id}/report.pdf", headers=auth)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert "engagement.pdf" in answer.headers["content-disposition"]
    pdf = pdfium.PdfDocument(io.BytesIO(answer.content))
    assert len(pdf) == 1
    page = pdf[0]
    text = " ".join(page.get_textpage().get_text_range().split())
    images = [o for o in page.get_objects() if o.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE]
    pdf.close()
    assert len(images) == 1  # the logo
    for words in (
        "Third Quarter 2026 Results",
        "Registrants 1",
        "Live listeners 2 1 phone · 1 web",
        "Replay listeners 0 0 phone · 0 web",
        "Questions 1 asked 1 answered · 1 by phone · 0 written",
        "Peak concurrent 2",
        "Average time live 1.1 min",
        "Live minutes heard 1.5 0.8 2.2",
        "Questions asked 1 0 1",
    ):
        assert words in text, (words, text)

    login(client)
    page_html = client.get(f"/console/events/{event_id}/report")
    assert f'href="/api/events/{event_id}/report.pdf"' in page_html.text
    tiles = text_of(page_html.text.split('id="report-tiles"')[1].split("</ul>")[0])
    assert "Peak concurrent 2" in " ".join(tiles.split())


def test_the_api_takes_a_logo_as_the_requests_body(
    client: TestClient, auth: dict[str, str]
) -> None:
    record = make_event(client, title="Q3 results")
    url = f"/api/events/{record.id}/logo"
    assert client.put(url, content=png()).status_code == 401
    script = f'<svg {NS} viewBox="0 0 9 9" onload="alert(1)"/>'.encode()
    refused = client.put(url, content=script, headers=auth)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "logo"]
    assert "event attribute (onload" in refused.json()["detail"][0]["msg"]
    too_big = client.put(url, content=bytes(600 * 1024), headers=auth)
    assert too_big.status_code == 413 and "at most 512 KB" in too_big.text
    assert _store(client).get(record.id).company.logo is None

    taken = client.put(url, content=png(300, 90), headers=auth)
    assert taken.status_code == 200 and taken.json()["width"] == 300
    served = client.get(f"/events/{record.id}/logo")
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == png(300, 90)
    assert client.put("/api/events/999/logo", content=png(), headers=auth).status_code == 404
    assert client.delete(url, headers=auth).status_code == 204
    assert client.get(f"/events/{record.id}/logo").status_code == 404
