#!/usr/bin/env bash
# Patroni's post_bootstrap (deploy/patroni/patroni.yml): runs once, on the member that
# initialised the cluster, with a connection string to it as $1. Creates the databases of
# DESIGN.md section 2 (`default` is statelab); keep in step with docker-compose.yml's URLs.
set -Eeuo pipefail

STATELAB_DATABASES=(
    statelab
    statelab_accounts
    statelab_ledger
    statelab_shard_0
    statelab_shard_1
    statelab_shard_2
    statelab_shard_3
)

for db in "${STATELAB_DATABASES[@]}"; do
    echo "post-bootstrap: creating database ${db}"
    psql "$1" -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"${db}\""
done
