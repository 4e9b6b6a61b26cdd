"""When a failed background job runs again: a failure because a backing service was briefly unavailable (S3, the
database: ``storage.outages.is_transient``) is retried after a back-off that doubles per attempt
(``base``, ``2 * base``, ... at most ``max_delay``), up to ``max_attempts``; any other failure (a corrupt file, a
conversion LibreOffice refused, a file too complex) ends the job at once. Either way an administrator can run it
again (``eoffice.jobs``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from storage.outages import is_transient


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 30.0  # seconds before the first retry
    max_delay: float = 3600.0
    max_attempts: int = 8  # failed runs before the job is left failed

    def delay(self, attempts: int) -> dt.timedelta:
        """The wait after the ``attempts``-th failed run (1, 2, ...)."""
        return dt.timedelta(seconds=min(self.base * 2 ** max(attempts - 1, 0), self.max_delay))

    def next_attempt(self, error: BaseException, attempts: int, now: dt.datetime) -> dt.datetime | None:
        """When to run again after the ``attempts``-th failed run with ``error``; None: not by itself."""
        if not is_transient(error) or attempts >= self.max_attempts:
            return None
        return now + self.delay(attempts)


__all__ = ["RetryPolicy"]
