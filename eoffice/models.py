"""Every e-office table module, for storage.models."""

import eoffice.audit
import eoffice.identity
import eoffice.org  # noqa: F401
import eoffice.uploads  # noqa: F401
