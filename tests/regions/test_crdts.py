"""Every merge is commutative, associative and idempotent, over states reached by operations
on three replicas that merge with one another at random (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from regions import crdts

REPLICAS = ("r1", "r2", "r3")
replica = st.sampled_from(REPLICAS)


def _run(steps, empty: Callable, apply: Callable, merge: Callable) -> list:
    states = {name: empty() for name in REPLICAS}
    for step in steps:
        if step[0] == "merge":
            _, target, source = step
            states[target] = merge(states[target], states[source])
        else:
            states[step[1]] = apply(states[step[1]], step)
    return [states[name] for name in REPLICAS]


def _steps(operation: st.SearchStrategy) -> st.SearchStrategy:
    merge = st.tuples(st.just("merge"), replica, replica)
    return st.lists(st.one_of(operation, merge), max_size=25)


gcounter_steps = _steps(st.tuples(st.just("inc"), replica, st.integers(1, 50)))
pncounter_steps = _steps(st.tuples(st.just("inc"), replica, st.integers(-50, 50)))
orset_steps = _steps(
    st.tuples(st.sampled_from(["add", "remove"]), replica, st.sampled_from("abcd"))
)
doc_steps = _steps(
    st.tuples(st.just("insert"), replica, st.integers(0, 40), st.sampled_from(["x", "yz", " "]))
)


def gcounters(steps):
    return _run(
        steps,
        crdts.gcounter_empty,
        lambda s, step: crdts.gcounter_increment(s, step[1], step[2]),
        crdts.gcounter_merge,
    )


def pncounters(steps):
    return _run(
        steps,
        crdts.pncounter_empty,
        lambda s, step: crdts.pncounter_change(s, step[1], step[2]),
        crdts.pncounter_merge,
    )


def orsets(steps):
    def apply(state, step):
        if step[0] == "add":
            return crdts.orset_add(state, step[1], step[2])
        return crdts.orset_remove(state, step[2])

    return _run(steps, crdts.orset_empty, apply, crdts.orset_merge)


def docs(steps):
    def apply(state, step):
        length = len(crdts.doc_value(state))
        return crdts.doc_edit(state, insert=(min(step[2], length), step[3]))

    return _run(steps, crdts.doc_empty, apply, crdts.doc_merge)


def _laws(merge, value, a, b, c) -> None:
    assert value(merge(a, b)) == value(merge(b, a))
    assert value(merge(merge(a, b), c)) == value(merge(a, merge(b, c)))
    assert value(merge(a, a)) == value(a)


def _identity(state):
    return state


@given(gcounter_steps)
def test_gcounter_merge_is_commutative_associative_idempotent(steps):
    _laws(crdts.gcounter_merge, _identity, *gcounters(steps))


@given(pncounter_steps)
def test_pncounter_merge_is_commutative_associative_idempotent(steps):
    _laws(crdts.pncounter_merge, _identity, *pncounters(steps))


@given(orset_steps)
def test_orset_merge_is_commutative_associative_idempotent(steps):
    _laws(crdts.orset_merge, _identity, *orsets(steps))


@settings(max_examples=40, deadline=None)
@given(doc_steps)
def test_doc_merge_is_commutative_associative_idempotent_on_the_text(steps):
    _laws(crdts.doc_merge, crdts.doc_value, *docs(steps))


@given(pncounter_steps)
def test_a_merged_pncounter_counts_every_change_once(steps):
    a, b, c = pncounters(steps)
    merged = crdts.pncounter_merge(crdts.pncounter_merge(a, b), c)
    everything = crdts.pncounter_value(merged)
    expected = sum(step[2] for step in steps if step[0] == "inc")

    assert everything == expected


def test_orset_add_wins_over_a_concurrent_remove():
    base = crdts.orset_add(crdts.orset_empty(), "r1", "a")
    removed = crdts.orset_remove(base, "a")
    added_again = crdts.orset_add(base, "r2", "a")

    assert crdts.orset_value(crdts.orset_merge(removed, added_again)) == ["a"]


def test_orset_remove_wins_over_the_add_it_observed():
    base = crdts.orset_add(crdts.orset_empty(), "r1", "a")

    assert crdts.orset_value(crdts.orset_merge(base, crdts.orset_remove(base, "a"))) == []


# ---- the registers: a region's state is the set of rows it holds ----------------------------


def _register_rows(steps) -> list:
    """Rows written by three regions that sometimes read (merge) another region's rows first,
    as the store writes them: a new dot, the context of what the writer held, an HLC."""
    from causal.clocks import Dot, VectorClock, joined_context
    from causal.hlc import Timestamp
    from regions.store import Row

    held: dict[str, set] = {name: set() for name in REPLICAS}
    counters = dict.fromkeys(REPLICAS, 0)
    wall = 0
    for step in steps:
        if step[0] == "merge":
            held[step[1]] |= held[step[2]]
            continue
        region = step[1]
        counters[region] += 1
        wall += step[2] % 3  # equal wall clocks happen; the logical part and region break ties
        context = joined_context(row.version for row in held[region])
        row = Row(
            "lww",
            "k",
            Dot(region, counters[region]),
            context if step[2] % 2 else VectorClock(),
            Timestamp(wall, counters[region], region),
            step[2],
        )
        held[region].add(row)
    return [held[name] for name in REPLICAS]


register_steps = _steps(st.tuples(st.just("write"), replica, st.integers(0, 20)))


def _read(rows: set) -> tuple:
    from causal.clocks import siblings
    from regions.store import lww_split

    winner, discarded, _overwritten = lww_split(sorted(rows, key=lambda row: row.dot))
    shuffled = lww_split(sorted(rows, key=lambda row: row.dot, reverse=True))
    assert (winner, sorted(r.dot for r in discarded)) == (
        shuffled[0],
        sorted(r.dot for r in shuffled[1]),
    )
    return (
        winner.dot if winner else None,
        sorted(row.dot for row in discarded),
        [version.dot for version in siblings(row.version for row in rows)],
    )


@given(register_steps)
def test_register_reads_depend_on_the_rows_held_not_on_their_order_or_repetition(steps):
    a, b, c = _register_rows(steps)

    assert _read(a | b) == _read(b | a)
    assert _read((a | b) | c) == _read(a | (b | c))
    assert _read(a | a) == _read(a)
