"""Imports every module that declares tables, so Base.metadata is complete (Alembic, tests).

This is the one place where storage looks upward: it only registers models, it calls nothing.
"""

import eoffice.models  # noqa: F401
import meetings.models  # noqa: F401
import storage.events  # noqa: F401
