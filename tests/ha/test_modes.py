"""The replication modes as Patroni's dynamic configuration (no cluster needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ha.errors import HaModeInvalid
from ha.modes import MODES, mode_of, mode_patch


@given(mode=st.sampled_from(MODES), count=st.integers(1, 2))
def test_the_configuration_of_a_mode_reads_back_as_that_mode(mode, count):
    assert mode_of(mode_patch(mode, sync_node_count=count)) == mode


def test_quorum_with_remote_apply_is_any_k_applied():
    patch = mode_patch("quorum", synchronous_commit="remote_apply")

    assert patch["synchronous_mode"] == "quorum"
    assert patch["postgresql"]["parameters"]["synchronous_commit"] == "remote_apply"


def test_async_turns_every_synchronous_setting_off():
    patch = mode_patch("async")

    assert (patch["synchronous_mode"], patch["synchronous_mode_strict"]) == (False, False)
    assert patch["postgresql"]["parameters"]["synchronous_commit"] == "on"


@pytest.mark.parametrize(
    ("mode", "options"),
    [("eventual", {}), ("sync", {"sync_node_count": 3}), ("sync", {"synchronous_commit": "off"})],
)
def test_what_patroni_could_not_honour_is_refused(mode, options):
    with pytest.raises(HaModeInvalid):
        mode_patch(mode, **options)
