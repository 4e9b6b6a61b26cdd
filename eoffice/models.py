"""Every e-office table module, for storage.models."""

import eoffice.audit
import eoffice.identity
import eoffice.org
import eoffice.uploads  # noqa: F401
from eoffice import access, documents, dossiers, ingest, outgoing, registers, search, tasks  # noqa: F401  (issue 4)
