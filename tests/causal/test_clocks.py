"""Vector clocks and dotted version vectors: the algebra and what a write may remove."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from causal.clocks import (
    ClockError,
    Dot,
    Order,
    VectorClock,
    Version,
    joined_context,
    new_dot,
    siblings,
    surviving,
)

REPLICAS = ["r1", "r2", "r3"]
clocks = st.dictionaries(st.sampled_from(REPLICAS), st.integers(0, 6)).map(VectorClock.of)


@given(clocks, clocks)
def test_merge_is_commutative(a, b):
    assert a.merge(b) == b.merge(a)


@given(clocks, clocks, clocks)
def test_merge_is_associative(a, b, c):
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(clocks)
def test_merge_is_idempotent(a):
    assert a.merge(a) == a


@given(clocks, clocks)
def test_a_merge_descends_from_both_sides(a, b):
    merged = a.merge(b)

    assert merged.descends(a)
    assert merged.descends(b)


@given(clocks, clocks)
def test_compare_is_antisymmetric(a, b):
    mirror = {
        Order.BEFORE: Order.AFTER,
        Order.AFTER: Order.BEFORE,
        Order.EQUAL: Order.EQUAL,
        Order.CONCURRENT: Order.CONCURRENT,
    }

    assert b.compare(a) == mirror[a.compare(b)]


@given(clocks, st.sampled_from(REPLICAS))
def test_an_increment_happens_after_the_clock_it_came_from(a, replica):
    assert a.increment(replica).compare(a) == Order.AFTER


def test_clocks_incremented_on_different_replicas_are_concurrent():
    base = VectorClock.of({"r1": 1})

    assert base.increment("r1").compare(base.increment("r2")) == Order.CONCURRENT


@pytest.mark.parametrize("bad", [{"r1": -1}, {"r1": 1.5}, {"r1": True}, {"": 1}, {"r1": 2**62}])
def test_a_malformed_clock_is_refused(bad):
    with pytest.raises(ClockError):
        VectorClock.of(bad)


def test_a_new_dot_is_past_every_known_event_of_its_replica():
    context = VectorClock.of({"r1": 3})

    assert new_dot("r1", context, [Dot("r1", 5), Dot("r2", 9)]) == Dot("r1", 6)


class Store:
    """One key on one replica set, written by clients that carry contexts, as the services do."""

    def __init__(self):
        self.versions: list[Version] = []

    def read(self) -> tuple[list[Version], VectorClock]:
        current = siblings(self.versions)
        return current, joined_context(current)

    def write(self, replica: str, context: VectorClock) -> Version:
        dot = new_dot(replica, context, [v.dot for v in self.versions])
        version = Version(dot, context)
        self.versions = [*surviving(self.versions, context), version]
        return version


@given(st.lists(st.tuples(st.sampled_from(REPLICAS), st.integers(0, 5)), max_size=25))
def test_a_write_removes_exactly_the_versions_its_context_saw(steps):
    store = Store()
    contexts = [VectorClock()]
    for replica, pick in steps:
        context = contexts[pick % len(contexts)]
        before = list(store.versions)
        store.write(replica, context)
        kept = {v.dot for v in store.versions}
        for version in before:
            assert (version.dot in kept) == (not context.covers(version.dot))
        contexts.append(store.read()[1])


@given(st.lists(st.tuples(st.sampled_from(REPLICAS), st.integers(0, 5)), max_size=25))
def test_siblings_are_pairwise_concurrent(steps):
    store = Store()
    contexts = [VectorClock()]
    for replica, pick in steps:
        store.write(replica, contexts[pick % len(contexts)])
        contexts.append(store.read()[1])
    current, _ = store.read()
    for a in current:
        for b in current:
            if a is not b:
                assert not b.context.covers(a.dot)


@given(st.lists(st.sampled_from(REPLICAS), min_size=1, max_size=10))
def test_a_write_with_the_context_of_a_read_leaves_one_version(replicas):
    store = Store()
    for replica in replicas:
        store.write(replica, VectorClock())  # blind writes: siblings pile up
    _, context = store.read()

    store.write("r1", context)

    assert len(store.read()[0]) == 1


def test_two_writes_through_one_replica_with_one_context_are_both_kept():
    """The lost update a vector clock per replica would make: {r1: 3} > {r1: 2} would drop the
    first write, though neither writer saw the other's."""
    store = Store()
    store.write("r1", VectorClock())
    _, context = store.read()

    first = store.write("r1", context)
    second = store.write("r1", context)

    assert {v.dot for v in store.read()[0]} == {first.dot, second.dot}
