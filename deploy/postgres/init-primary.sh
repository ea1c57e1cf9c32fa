#!/usr/bin/env bash
# Runs once, inside the `primary` container, the first time its data directory is created
# (mounted into /docker-entrypoint-initdb.d/). POSTGRES_DB (`statelab`, alias `default`)
# already exists; this adds the other databases of docs/architecture.md section 2 on the same server
# and lets the `replica` service stream WAL from it.
# No `set -u`: the image's entrypoint sources (rather than runs) init scripts that lost
# their executable bit, and its own code expects unset variables to be allowed.
set -Eeo pipefail

# One database per alias: accounts, ledger, shard_0 .. shard_3 (moving a shard elsewhere is
# only a change of SHARD_URLS). Keep in step with the URLs in docker-compose.yml.
STATELAB_DATABASES=(
    statelab_accounts
    statelab_ledger
    statelab_shard_0
    statelab_shard_1
    statelab_shard_2
    statelab_shard_3
)

for db in "${STATELAB_DATABASES[@]}"; do
    echo "init-primary: creating database ${db}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v db="$db" -v owner="$POSTGRES_USER" <<'SQL'
CREATE DATABASE :"db" OWNER :"owner";
SQL
done

# The image's pg_hba.conf allows "all" databases from anywhere, but the keyword "all" does
# not cover replication connections: allow them (password-checked) for the replica.
# The entrypoint restarts the server after these scripts, so the line takes effect then.
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
