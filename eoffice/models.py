"""Every e-office table module, for storage.models."""

import eoffice.audit
import eoffice.digest  # issue 4: the server's daily digest claims
import eoffice.edxml  # issue 9: edXML links, messages, quarantine, status events
import eoffice.identity
import eoffice.org
import eoffice.uploads  # noqa: F401
from eoffice import access, documents, dossiers, ingest, outgoing, registers, search, tasks  # noqa: F401  (issue 4)
