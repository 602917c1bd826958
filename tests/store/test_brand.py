"""The company's logo and colour in SQLite and PostgreSQL: kept with the company, shared by
its events, read back byte for byte, and the colour kept through the file and a patch."""

from __future__ import annotations

import pytest

from callbridge.brand.logo import check_logo
from callbridge.events.schema import EventFile, EventPatch
from callbridge.store.brand import BrandStore
from callbridge.store.db import Database
from callbridge.store.events import EventNotFound, EventStore
from tests.brand.test_logo import GOOD_SVG, png


def test_the_brand_is_the_companys_and_survives_a_patch(
    database: Database, example_spec: EventFile
) -> None:
    events, brands = EventStore(database), BrandStore(database)
    data = example_spec.model_dump(mode="json")
    data["company"]["accent"] = "#7A1F3D"
    first = events.create(EventFile.model_validate(data))
    data["event"].update(passcode="5550001", speaker_passcode="5550002", replay_passcode="5550003")
    second = events.create(EventFile.model_validate(data))
    assert first.company.accent == "#7a1f3d" and first.company.logo is None

    svg = check_logo(GOOD_SVG)
    brands.set_logo(first.id, svg)
    shown = events.get(second.id).company.logo  # the same ticker: the same company
    assert shown is not None and shown.digest == svg.digest and shown.media_type == svg.media_type
    stored = brands.logo(second.id)
    assert (
        stored is not None
        and stored.data == svg.data
        and (stored.width, stored.height)
        == (
            240,
            64,
        )
    )
    picture = check_logo(png(300, 90))
    brands.set_logo(second.id, picture)
    again = brands.logo(first.id)
    assert again is not None and again.data == picture.data

    patched = events.update(first.id, EventPatch(title="Renamed"))
    assert patched.company.accent == "#7a1f3d" and patched.company.logo is not None

    brands.set_logo(first.id, None)
    assert brands.logo(second.id) is None and events.get(second.id).company.logo is None
    with pytest.raises(EventNotFound):
        brands.logo(999)
    with pytest.raises(EventNotFound):
        brands.set_logo(999, picture)
