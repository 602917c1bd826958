"""``phone_requires_registration``: off by default, needs webcast registration, kept through
the store, a patch and the editor's fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callbridge.events import form
from callbridge.events.schema import EventFile, EventPatch
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from tests.conftest import example_data


def test_off_by_default_and_refused_without_webcast_registration() -> None:
    assert EventFile.model_validate(example_data()).event.phone_requires_registration is False
    data = example_data()
    data["event"] = {**data["event"], "phone_requires_registration": True, "registration": "off"}
    with pytest.raises(ValidationError, match="phone_requires_registration: needs webcast"):
        EventFile.model_validate(data)


def test_kept_by_the_store_a_patch_and_the_editors_fields(
    sqlite_database: Database, example_spec: EventFile
) -> None:
    store = EventStore(sqlite_database)
    record = store.create(example_spec)
    assert record.phone_requires_registration is False
    record = store.update(record.id, EventPatch(phone_requires_registration=True))
    assert store.get(record.id).phone_requires_registration is True
    values = form.values_of(record)
    assert values["event.phone_requires_registration"] == "true"
    spec, errors = form.validate(values)
    assert errors == {} and spec is not None and spec.event.phone_requires_registration
    values["event.phone_requires_registration"] = "false"
    spec, _ = form.validate(values)
    assert spec is not None and not spec.event.phone_requires_registration
