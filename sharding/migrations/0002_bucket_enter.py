from django.db import migrations

BUCKET_ENTER = """
CREATE OR REPLACE FUNCTION sharding_bucket_enter(target_bucket integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Shared with every other writer of the bucket, exclusive with a move's fence.
    PERFORM pg_advisory_xact_lock_shared(7345, target_bucket);
    -- A VOLATILE function's query takes a new snapshot: it sees a fence committed while
    -- this transaction waited for the lock.
    RETURN NOT EXISTS (SELECT 1 FROM sharding_bucketfence WHERE bucket = target_bucket);
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("sharding", "0001_initial")]

    operations = [
        migrations.RunSQL(BUCKET_ENTER, "DROP FUNCTION IF EXISTS sharding_bucket_enter(integer);")
    ]
