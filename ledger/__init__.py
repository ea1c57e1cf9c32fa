"""The transfer saga and the double-entry journal (database alias: ledger)."""
