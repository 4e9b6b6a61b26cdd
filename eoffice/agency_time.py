"""The agency's time zone and local dates (registers' years, deadlines, digests): pure, no tables."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

AGENCY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_date(at: dt.datetime, tz: ZoneInfo = AGENCY_TZ) -> dt.date:
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return at.astimezone(tz).date()
