"""The auditor: the one place that reads both the accounts and the ledger databases, read
only, to check that they agree (architecture section 3, invariants 1-3)."""
