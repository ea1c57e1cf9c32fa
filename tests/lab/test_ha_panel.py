"""The State Lab's HA panel: everyone sees the cluster and the state machine; only staff get
the mode switch, the kill-the-leader button and the switchover."""

import pytest
from django.test import Client

from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

STAFF_CONTROLS = ('id="ha-mode-form"', 'id="ha-kill"', 'id="ha-switchover"')


def _page(user) -> str:
    client = Client()
    client.force_login(user)
    return client.get("/lab/").content.decode()


def test_everyone_sees_the_cluster_its_failover_timeline_and_the_state_machine():
    body = _page(UserFactory())

    for part in ('id="panel-ha"', 'id="ha-members"', 'id="ha-events"', 'id="smr-keys"'):
        assert part in body
    assert not any(control in body for control in STAFF_CONTROLS)


def test_staff_get_the_mode_switch_the_kill_button_and_the_switchover():
    body = _page(StaffFactory())

    assert all(control in body for control in STAFF_CONTROLS)


def test_the_panel_script_is_served_from_this_origin_and_fetches_nothing_elsewhere():
    client = Client()
    client.force_login(UserFactory())
    body = client.get("/lab/").content.decode()

    script = b"".join(client.get("/static/lab/ha.js").streaming_content)

    assert '<script src="/static/lab/ha.js"></script>' in body
    assert b"http://" not in script
    assert b"https://" not in script
