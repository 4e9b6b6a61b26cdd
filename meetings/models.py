"""Every eCabinet table, for storage.models: they are declared in ``meetings.schema`` and, for the
calendars, ``meetings.calendar_schema``."""

import meetings.calendar_schema
import meetings.schema  # noqa: F401
