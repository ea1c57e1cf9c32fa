"""A Patroni member's configuration (no process: the cluster itself is exercised by tests/ha
on the stack's own members)."""

from devstack import config
from devstack.components import PatroniMember
from devstack.groups import GROUPS
from devstack.workspace import Workspace


def _member(workspace: Workspace, **options) -> PatroniMember:
    return PatroniMember(
        workspace,
        name="patroni_x",
        port=1111,
        api_port=2222,
        etcd_urls=["http://127.0.0.1:3333"],
        **options,
    )


def test_the_timings_follow_patronis_rule_and_fail_over_a_crashed_leader_at_once(workspace):
    dcs = _member(workspace).patroni_config()["bootstrap"]["dcs"]

    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["ttl"] >= 20
    assert dcs["primary_start_timeout"] == 0
    assert dcs["postgresql"]["use_pg_rewind"]
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"


def test_tcp_needs_a_password_and_listens_on_loopback_only(workspace):
    patroni = _member(workspace).patroni_config()

    assert all("trust" not in line for line in patroni["postgresql"]["pg_hba"] if "host" in line)
    assert patroni["postgresql"]["listen"] == f"{config.HOST}:1111"
    assert patroni["restapi"]["listen"] == f"{config.HOST}:2222"
    assert patroni["restapi"]["authentication"]["username"] == config.PG_USER


def test_an_apply_delay_is_this_members_own_setting_only_when_set(workspace):
    plain = _member(workspace).patroni_config()["postgresql"]["parameters"]
    delayed = _member(workspace, apply_delay_ms=250).patroni_config()["postgresql"]["parameters"]

    assert "recovery_min_apply_delay" not in plain
    assert delayed["recovery_min_apply_delay"] == "250ms"


def test_the_ha_group_has_three_patroni_members_on_three_etcd_members():
    built = GROUPS["ha"].build(Workspace(config.STACK_DIR), config.StackConfig())
    patroni = [c for c in built if isinstance(c, PatroniMember)]

    assert [c.name for c in built] == [
        "etcd_1",
        "etcd_2",
        "etcd_3",
        "patroni_1",
        "patroni_2",
        "patroni_3",
    ]
    assert all(len(member.etcd_urls) == 3 for member in patroni)
    assert all(set(member.depends_on) == {"etcd_1", "etcd_2", "etcd_3"} for member in patroni)
