"""Account balances and the operations applied to them (database alias: accounts)."""
