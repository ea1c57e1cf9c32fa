"""What crosses the boundary between the accounts and ledger services: message names and
payload types, and nothing else.

The two services share no model, no service, no selector and no database: they talk through
outbox rows relayed to Celery. Each message here is a frozen dataclass whose ``name`` is the
Celery task that consumes it; the producer writes ``Message(...)`` with
``core.outbox.outbox_message_put`` and the consumer's task reads it back with
``Message.from_payload``. This package imports nothing from the project, so either service can
depend on it without depending on the other.

- ``contracts.saga``: the transfer saga's commands (ledger -> accounts) and their replies
  (accounts -> ledger);
- ``contracts.accounts``: what accounts announce about accounts and deposits (accounts ->
  ledger), and the ledger's acknowledgement of a journaled deposit (ledger -> accounts).
"""
