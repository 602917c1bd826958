"""No public page, of any format, prints the speaker passcode, whatever its length."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import example_data


@pytest.mark.parametrize("speaker", ["9797", "9797979", "979797979797"])
def test_no_public_page_prints_the_speaker_passcode(
    client: TestClient, auth: dict[str, str], speaker: str
) -> None:
    data: dict[str, Any] = example_data()
    data["event"]["speaker_passcode"] = speaker
    data["event"]["registration"] = "off"
    created = client.post("/api/events", json=_json(data), headers=auth)
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    assert created.json()["speaker_passcode"] == speaker  # the operator's API has it
    alone = re.compile(rf"(?<!\d){speaker}(?!\d)")
    public = [
        "/events",
        f"/events/{event_id}/announcement",
        f"/events/{event_id}/webcast",
        f"/api/events/{event_id}/webcast",
        *(f"/api/events/{event_id}/announcement.{fmt}" for fmt in ("txt", "html", "md", "ics")),
    ]
    for path in public:
        response = client.get(path)  # no credentials: what anyone can read
        assert response.status_code == 200, (path, response.status_code)
        assert not alone.search(response.text), path
    # The listener passcode is public, so the check above is not vacuous.
    listener = created.json()["passcode"]
    assert listener in client.get(f"/api/events/{event_id}/announcement.txt").text


def _json(data: dict[str, Any]) -> dict[str, Any]:
    """The TOML example as a JSON body (dates and times as ISO text)."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return value

    result: dict[str, Any] = convert(data)
    return result
