"""A company's logo in the database, beside its row: so every web node sharing the
database serves the same one, with no file to copy between them.

The bytes were checked by ``brand.logo.check_logo`` before they come here;
the store keeps them and their type, digest and size, and hands them back
to be served. The accent colour travels with the event's fields
(``store.events``), since the TOML file and the API carry it too.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbridge.brand.logo import Logo
from callbridge.store.db import Database, valid_id
from callbridge.store.events import EventNotFound
from callbridge.store.models import CompanyRow, EventRow


class BrandStore:
    """Set, clear and read the logo of the company an event belongs to."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @staticmethod
    def _company(session: Session, event_id: int) -> CompanyRow:
        if not valid_id(event_id):
            raise EventNotFound(f"there is no event {event_id}")
        company = session.scalar(select(CompanyRow).join(EventRow).where(EventRow.id == event_id))
        if company is None:
            raise EventNotFound(f"there is no event {event_id}")
        return company

    def set_logo(self, event_id: int, logo: Logo | None) -> None:
        """Give the event's company ``logo`` (None: take its logo away)."""
        with self.database.session() as session, session.begin():
            company = self._company(session, event_id)
            company.logo = None if logo is None else logo.data
            company.logo_type = None if logo is None else logo.media_type
            company.logo_digest = None if logo is None else logo.digest
            company.logo_width = None if logo is None else logo.width
            company.logo_height = None if logo is None else logo.height

    def logo(self, event_id: int) -> Logo | None:
        """The event's company's logo as stored, or None; EventNotFound for no such event."""
        with self.database.session() as session:
            company = self._company(session, event_id)
            if company.logo is None or company.logo_type is None:
                return None
            return Logo(
                company.logo_type, company.logo, company.logo_width or 0, company.logo_height or 0
            )
