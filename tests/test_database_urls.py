"""Database URLs as the settings read them: single hosts (compose, given URLs) and libpq's
multi-host URLs (the Patroni cluster's members, the leader found by target_session_attrs)."""

from __future__ import annotations

import pytest

from config.settings.env import (
    BadSettingValue,
    database_from_url,
    database_hosts,
    split_urls,
)


def test_a_single_host_url_keeps_its_host_and_port():
    entry = database_from_url("postgres://u:p%40ss@db.example:6543/name", conn_max_age=0)

    assert (entry["HOST"], entry["PORT"], entry["USER"], entry["PASSWORD"], entry["NAME"]) == (
        "db.example",
        "6543",
        "u",
        "p@ss",
        "name",
    )


def test_a_multi_host_url_lists_every_member_in_order_with_its_target():
    entry = database_from_url(
        "postgres://u:p@a:1,b:2,[::1]:3/name?target_session_attrs=read-write", conn_max_age=0
    )

    assert (entry["HOST"], entry["PORT"]) == ("a,b,::1", "1,2,3")
    assert entry["OPTIONS"]["target_session_attrs"] == "read-write"
    assert database_hosts(entry) == [("a", 1), ("b", 2), ("::1", 3)]


def test_hosts_without_a_port_get_postgres_default_port():
    entry = database_from_url("postgres://u@a,b:7/name", conn_max_age=0)

    assert entry["PORT"] == "5432,7"


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u@a:1,b:port/name",
        "postgres://u@a:99999/name",
        "postgres://u@a:1/name?target_session_attrs=leader",
        "postgres://u@a:1/",
        "mysql://u@a/name",
    ],
)
def test_a_url_the_settings_cannot_use_is_refused_by_name(url):
    with pytest.raises(BadSettingValue):
        database_from_url(url, conn_max_age=0)


def test_a_list_of_multi_host_urls_splits_only_where_a_url_begins():
    first = "postgres://u@a:1,b:2/x?target_session_attrs=standby"
    second = "postgres://u@b:2,a:1/x?target_session_attrs=standby"

    assert split_urls(f"{first},{second}") == [first, second]
    assert split_urls(f" {first} , {second} ") == [first, second]
