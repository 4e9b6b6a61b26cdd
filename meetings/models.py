"""Every eCabinet table, for storage.models: they are declared in ``meetings.schema``, for the calendars
``meetings.calendar_schema``, and for the written consultation (issue 20) ``meetings.consultations``."""

import meetings.calendar_schema
import meetings.consultations
import meetings.schema  # noqa: F401
