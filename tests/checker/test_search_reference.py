"""The searches against brute force, on small random histories (most of them not linearizable).

The prunings (memo, reads placed eagerly, interchangeable twins, info writes settled by their
readers, the block check for registers) must never change a verdict: a search that tries
every order decides the same.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from checker import parse_history
from checker.datatypes import FAIL, apply, compile_op, initial_state
from checker.search import linearizable, searchable, sequential

FUNCTIONS = {
    "register": ["read", "write", "cas"],
    "set": ["read", "add", "remove"],
    "counter": ["read", "increment"],
}


@st.composite
def small_histories(draw, datatype):
    """A random interleaving of a few operations on one key, results drawn at random."""
    processes = list(range(draw(st.integers(1, 3))))
    idle, running, crashed = set(processes), {}, set()
    events = []
    budget = draw(st.integers(1, 6))
    next_process = len(processes)
    while budget or running:
        can_start = sorted(idle) if budget else []
        choice = draw(
            st.sampled_from([*(("start", p) for p in can_start), *(("end", p) for p in running)])
        )
        kind, process = choice
        if kind == "start":
            f = draw(st.sampled_from(FUNCTIONS[datatype]))
            value = _argument(draw, datatype, f)
            events.append(
                {"process": process, "type": "invoke", "f": f, "key": "k", "value": value}
            )
            idle.discard(process)
            running[process] = (f, value)
            budget -= 1
            continue
        f, value = running.pop(process)
        status = draw(st.sampled_from(["ok", "ok", "ok", "info", "fail"]))
        result = _result(draw, datatype) if f == "read" and status == "ok" else value
        events.append({"process": process, "type": status, "f": f, "key": "k", "value": result})
        if status == "info":
            crashed.add(process)
            idle.add(next_process)
            next_process += 1
        else:
            idle.add(process)
    return parse_history(events).ops


def _argument(draw, datatype, f):
    if f == "read":
        return None
    if f == "cas":
        return [draw(st.sampled_from([None, 1, 2])), draw(st.integers(1, 3))]
    if datatype == "counter":
        return draw(st.sampled_from([1, 2, -1]))
    return draw(st.integers(1, 3)) if datatype == "register" else draw(st.integers(0, 1))


def _result(draw, datatype):
    if datatype == "register":
        return draw(st.sampled_from([None, 1, 2, 3]))
    if datatype == "set":
        return draw(st.lists(st.integers(0, 1), unique=True, max_size=2))
    return draw(st.integers(0, 3))


def brute_force(ops, datatype, *, real_time):
    live = searchable(ops)
    compiled = [compile_op(op, datatype) for op in live]

    def placeable(index, placed):
        op = live[index]
        if real_time:
            return not any(
                other not in placed and live[other].complete_pos < op.invoke_pos
                for other in range(len(live))
                if other != index
            )
        return all(
            other in placed
            for other in range(len(live))
            if live[other].process == op.process and live[other].invoke_pos < op.invoke_pos
        )

    def search(placed, state):
        if all(index in placed for index, op in enumerate(live) if op.status == "ok"):
            return True
        for index in range(len(live)):
            if index in placed or not placeable(index, placed):
                continue
            after = apply(state, *compiled[index])
            if after is not FAIL and search(placed | {index}, after):
                return True
        return False

    return search(frozenset(), initial_state(datatype))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(list(FUNCTIONS)).flatmap(lambda d: st.tuples(st.just(d), small_histories(d)))
)
def test_the_linearizability_search_agrees_with_trying_every_order(case):
    datatype, ops = case

    assert linearizable(ops, datatype, 1_000_000) is brute_force(ops, datatype, real_time=True)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(list(FUNCTIONS)).flatmap(lambda d: st.tuples(st.just(d), small_histories(d)))
)
def test_the_sequential_search_agrees_with_trying_every_order(case):
    datatype, ops = case

    assert sequential(ops, datatype, 1_000_000) is brute_force(ops, datatype, real_time=False)
