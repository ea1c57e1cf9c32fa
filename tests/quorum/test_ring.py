"""Consistent hashing with virtual nodes: pure, no node involved."""

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from quorum.ring import Ring, ring_position

NODES = ("n1", "n2", "n3", "n4", "n5")
keys = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1)


@given(key=keys, n=st.integers(min_value=1, max_value=len(NODES)))
def test_a_preference_list_holds_n_distinct_nodes(key, n):
    preference = Ring(NODES, 64).preference_list(key, n)

    assert len(preference) == n
    assert len(set(preference)) == n
    assert set(preference) <= set(NODES)


@given(key=keys)
def test_the_walk_starts_with_the_preference_list_and_meets_every_node_once(key):
    ring = Ring(NODES, 64)

    walk = ring.walk(key)

    assert sorted(walk) == sorted(NODES)
    assert walk[:3] == ring.preference_list(key, 3)


@settings(max_examples=50)
@given(key=keys)
def test_a_new_node_takes_keys_but_never_moves_one_between_old_nodes(key):
    before = Ring(NODES, 64).preference_list(key, 1)[0]
    after = Ring((*NODES, "n6"), 64).preference_list(key, 1)[0]

    assert after in {before, "n6"}


def test_positions_are_the_same_in_another_process():
    """Python's hash() is salted per process; the ring's blake2b is not."""
    code = "from quorum.ring import ring_position; print(ring_position('user:42'))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert int(other) == ring_position("user:42")


def test_virtual_nodes_share_the_ring_evenly():
    shares = Ring(NODES, 64).shares()

    assert abs(sum(shares.values()) - 1) < 1e-9
    assert max(shares.values()) / min(shares.values()) < 1.6


def test_keys_spread_over_every_node_as_first_replica():
    ring = Ring(NODES, 64)
    firsts = [ring.preference_list(f"key-{i}", 1)[0] for i in range(5000)]

    counts = {node: firsts.count(node) for node in NODES}

    assert min(counts.values()) > 5000 / len(NODES) * 0.6, counts
