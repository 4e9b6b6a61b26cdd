"""Every eCabinet table, for storage.models: they are declared in ``meetings.schema`` and, for the
calendars, ``meetings.calendar_schema``."""

import meetings.calendar_schema
import meetings.schema  # noqa: F401
import meetings.consultations  # noqa: F401  (issue 20: its tables live with its service)
