#!/usr/bin/env bash
# Entrypoint of the `replica` service: a hot-standby streaming replica of `primary`.
#
# On first start (empty data directory) it clones the primary with
#   pg_basebackup -R -X stream -C -S <slot>
# which copies every database, creates a physical replication slot on the primary (so the
# primary keeps the WAL this replica still needs) and writes standby.signal plus
# primary_conninfo / primary_slot_name. Later starts reuse the data directory and resume
# streaming. Then it execs the command given by compose (`postgres -c ...`), where
# recovery_min_apply_delay makes replication lag visible on purpose.
set -Eeuo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=statelab}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is needed to connect to the primary}"
: "${PRIMARY_HOST:=primary}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_SLOT:=replica_1}"

# Postgres refuses to run as root: fix the volume's ownership, then drop to `postgres`.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec gosu postgres bash "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    export PGPASSWORD="$POSTGRES_PASSWORD"
    until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$POSTGRES_USER" -d postgres; do
        echo "replica: waiting for ${PRIMARY_HOST}:${PRIMARY_PORT}"
        sleep 1
    done

    # A slot left behind by an earlier replica volume would make `-C` fail; drop it if no
    # standby is using it (an active one means another replica owns it: fail loudly below).
    psql -v ON_ERROR_STOP=1 -qAt -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$POSTGRES_USER" \
        -d postgres -v slot="$REPLICATION_SLOT" <<'SQL'
SELECT pg_drop_replication_slot(slot_name)
  FROM pg_replication_slots
 WHERE slot_name = :'slot' AND NOT active;
SQL

    # pg_basebackup needs an empty target; a failed earlier attempt may have left files.
    find "$PGDATA" -mindepth 1 -delete

    # The password goes into the connection string so that -R writes it into
    # primary_conninfo (quoted as libpq wants: backslash and single quote escaped).
    password=${POSTGRES_PASSWORD//\\/\\\\}
    password=${password//\'/\\\'}
    echo "replica: cloning ${PRIMARY_HOST} with slot ${REPLICATION_SLOT}"
    pg_basebackup \
        -d "host=${PRIMARY_HOST} port=${PRIMARY_PORT} user=${POSTGRES_USER} password='${password}' application_name=${REPLICATION_SLOT}" \
        -D "$PGDATA" -R -X stream -C -S "$REPLICATION_SLOT" --checkpoint=fast
    unset password
    chmod 700 "$PGDATA"
fi

exec "$@"
