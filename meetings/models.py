"""Every eCabinet table, for storage.models: they are all declared in ``meetings.schema``."""

import meetings.schema  # noqa: F401
