"""E-office domain: organisation and accounts, incoming and outgoing documents, registers and
numbering, direction and tasks, dossiers, search, statistics.

Service convention (every ``async def`` service in this package that changes state):

- It takes a unit of work and the acting user first: ``await register_incoming(uow, actor, ...)``.
- It checks permission, changes state, writes one audit entry per state change
  (``eoffice.audit.record``) and queues its realtime event (``uow.emit``), in that order.
- It does **not** commit. The caller (HTTP handler, CLI, another service, a test) commits with
  ``await uow.commit()``; several services can therefore be composed into one transaction, and
  anything refused half-way leaves nothing behind. The documented exception is
  ``identity.authenticate``, which commits failed login attempts on purpose.
- Numbers (arrival numbers, issue numbers) are allocated inside that same transaction, before
  the audit entry, so a rollback gives the number back and lock order stays fixed
  (register row -> audit head -> event topics).
- Reading services raise ``NotFound`` (not ``Forbidden``) for documents the user may not see, so
  the API does not even confirm that a confidential document exists.

Domain modules never import ``web``.
"""
