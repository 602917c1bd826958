"""The API's optimistic concurrency: ETag on read, If-Match on PATCH, 412 with the event as
it is now when someone else changed it meanwhile."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.test_api import body


def test_if_match_refuses_a_change_from_an_old_version(
    client: TestClient, auth: dict[str, str]
) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    read = client.get(f"/api/events/{event['id']}", headers=auth)
    assert read.headers["etag"] == '"1"' and read.json()["version"] == 1

    first = client.patch(
        f"/api/events/{event['id']}",
        json={"title": "First editor"},
        headers={**auth, "If-Match": read.headers["etag"]},
    )
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"2"' and first.json()["version"] == 2

    second = client.patch(
        f"/api/events/{event['id']}",
        json={"period": "the second editor's period"},
        headers={**auth, "If-Match": read.headers["etag"]},
    )
    assert second.status_code == 412, second.text
    assert second.headers["etag"] == '"2"'
    answer = second.json()
    assert answer["detail"][0]["loc"] == ["header", "If-Match"]
    assert "changed by someone else" in answer["detail"][0]["msg"]
    assert answer["current"]["title"] == "First editor"
    kept = client.get(f"/api/events/{event['id']}", headers=auth).json()
    assert kept["period"] == event["period"] and kept["version"] == 2

    for tag in ("garbage", '"99999999999999"', 'W/"1"'):
        refused = client.patch(
            f"/api/events/{event['id']}", json={"title": "x"}, headers={**auth, "If-Match": tag}
        )
        assert refused.status_code == 412, tag


def test_without_if_match_or_with_a_star_a_change_applies(
    client: TestClient, auth: dict[str, str]
) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    plain = client.patch(f"/api/events/{event['id']}", json={"title": "A"}, headers=auth)
    assert plain.status_code == 200 and plain.json()["version"] == 2
    star = client.patch(
        f"/api/events/{event['id']}", json={"title": "B"}, headers={**auth, "If-Match": "*"}
    )
    assert star.status_code == 200 and star.json()["version"] == 3
