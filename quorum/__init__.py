"""Dynamo-style quorum replication: a coordinator in the service over Postgres storage nodes."""
