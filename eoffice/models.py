"""Every e-office table module, for storage.models."""

import eoffice.audit
import eoffice.digest  # issue 4: the server's daily digest claims
import eoffice.org
import eoffice.registers
import eoffice.schema.exchange  # issue 16: peers, outbox and receipts of the exchange between installations
import eoffice.search  # tells Alembic's autogenerate to keep the SQLite FTS5 tables
import eoffice.uploads  # noqa: F401
from eoffice.schema import delegations, documents, dossiers, edxml, identity, notifications, outgoing, tasks  # noqa: F401
