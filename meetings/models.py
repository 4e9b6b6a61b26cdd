"""Every eCabinet table module, for storage.models."""

import meetings.agenda
import meetings.annotations
import meetings.ballot_keys
import meetings.documents
import meetings.meetings
import meetings.minutes
import meetings.speakers
import meetings.voting  # noqa: F401
