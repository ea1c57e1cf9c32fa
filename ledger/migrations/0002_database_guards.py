"""Database-level guards that hold even for code that bypasses the services:

- a transfer's state can only move along architecture section 3's transitions;
- journal entries and postings are immutable (no UPDATE, no DELETE);
- every entry's postings sum to zero, checked at commit (deferred constraint trigger).
"""

from django.db import migrations

TRANSITION_GUARD = """
CREATE FUNCTION ledger_transfer_transition_guard() RETURNS trigger AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state AND (OLD.state, NEW.state) NOT IN (
        ('pending', 'debited'), ('pending', 'failed'),
        ('debited', 'credited'), ('debited', 'compensating'),
        ('credited', 'completed'), ('compensating', 'compensated')
    ) THEN
        RAISE EXCEPTION 'illegal transfer transition % -> %', OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.amount, NEW.currency, NEW.source_account_id,
            NEW.destination_account_id) IS DISTINCT FROM (OLD.amount, OLD.currency,
            OLD.source_account_id, OLD.destination_account_id) THEN
        RAISE EXCEPTION 'a transfer''s accounts and amount never change'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_transfer_transition_guard BEFORE UPDATE ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_transfer_transition_guard();
CREATE FUNCTION ledger_transfer_starts_pending() RETURNS trigger AS $$
BEGIN
    IF NEW.state <> 'pending' THEN
        RAISE EXCEPTION 'a transfer starts in pending' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_transfer_starts_pending BEFORE INSERT ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_transfer_starts_pending();
"""

JOURNAL_GUARDS = """
CREATE FUNCTION ledger_journal_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'check_violation';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_journalentry_immutable BEFORE UPDATE OR DELETE ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_journal_immutable();
CREATE TRIGGER ledger_posting_immutable BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_journal_immutable();
CREATE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
DECLARE
    total bigint;
    postings integer;
BEGIN
    SELECT coalesce(sum(amount), 0), count(*) INTO total, postings
        FROM ledger_posting WHERE entry_id = NEW.id;
    IF total <> 0 OR postings < 2 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced (% postings summing to %)',
            NEW.id, postings, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_journalentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();
"""

REVERSE = """
DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_journalentry;
DROP TRIGGER IF EXISTS ledger_posting_immutable ON ledger_posting;
DROP TRIGGER IF EXISTS ledger_journalentry_immutable ON ledger_journalentry;
DROP TRIGGER IF EXISTS ledger_transfer_starts_pending ON ledger_transfer;
DROP TRIGGER IF EXISTS ledger_transfer_transition_guard ON ledger_transfer;
DROP FUNCTION IF EXISTS ledger_entry_balanced();
DROP FUNCTION IF EXISTS ledger_journal_immutable();
DROP FUNCTION IF EXISTS ledger_transfer_starts_pending();
DROP FUNCTION IF EXISTS ledger_transfer_transition_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(TRANSITION_GUARD + JOURNAL_GUARDS, REVERSE)]
