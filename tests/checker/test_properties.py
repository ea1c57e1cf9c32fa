"""Properties over simulated single-copy executions (checker.simulate), with hypothesis."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker import HOLDS, VIOLATED, check, parse_history
from checker.search import linearizable
from checker.simulate import simulate_history

examples = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def executions(datatype="register"):
    """Events of a random linearizable execution: concurrency, timeouts, a few keys."""
    return st.builds(
        lambda rng, operations, keys, clients, info_rate: simulate_history(
            rng,
            operations=operations,
            keys=keys,
            clients=clients,
            datatype=datatype,
            info_rate=info_rate,
            final_replicas=2,
        ),
        st.randoms(use_true_random=False),
        st.integers(min_value=1, max_value=60),
        st.integers(min_value=1, max_value=3),
        st.integers(min_value=1, max_value=5),
        st.sampled_from([0.0, 0.1, 0.3]),
    )


@examples
@given(executions("register"))
def test_every_atomic_register_execution_is_linearizable(events):
    assert check(events, "linearizable").outcome == HOLDS


@examples
@given(executions("set"))
def test_every_atomic_set_execution_is_linearizable(events):
    assert check(events, "linearizable").outcome == HOLDS


@examples
@given(executions("counter"))
def test_every_atomic_counter_execution_is_linearizable(events):
    assert check(events, "linearizable").outcome == HOLDS


@examples
@given(executions("register"), st.sampled_from(["sequential", "causal", "convergence"]))
def test_every_atomic_register_execution_satisfies_the_weaker_models(events, model):
    assert check(events, model).outcome == HOLDS


@examples
@given(
    executions("register"),
    st.sampled_from(
        [
            "read-your-writes",
            "monotonic-reads",
            "monotonic-writes",
            "writes-follow-reads",
            "session",
        ]
    ),
)
def test_every_single_copy_execution_satisfies_the_session_guarantees(events, model):
    assert check(events, model).outcome == HOLDS


def _ok_reads(events):
    return [
        index
        for index, event in enumerate(events)
        if event["type"] == "ok" and event["f"] == "read" and not event.get("final")
    ]


@examples
@given(
    executions("register"),
    st.randoms(use_true_random=False),
    st.sampled_from(["linearizable", "sequential", "causal", "session", "convergence"]),
)
def test_a_read_of_a_value_never_written_violates_every_model(events, rng, model):
    reads = _ok_reads(events)
    if not reads:
        return
    index = rng.choice(reads)
    events[index] = {**events[index], "value": "never written"}

    verdict = check(events, model)

    assert verdict.outcome == VIOLATED
    assert any(op.result == "never written" for op in verdict.counterexample.ops)


@examples
@given(executions("register"), st.randoms(use_true_random=False))
def test_a_counterexample_is_itself_not_linearizable(events, rng):
    reads = _ok_reads(events)
    writes = [e["value"] for e in events if e["type"] == "ok" and e["f"] == "write"]
    if not reads or not writes:
        return
    index = rng.choice(reads)
    events[index] = {**events[index], "value": rng.choice(writes)}
    history = parse_history(events)

    verdict = check(history, "linearizable")

    if verdict.outcome == VIOLATED:
        assert linearizable(verdict.counterexample.ops, "register", 1_000_000) is False


def test_a_long_single_key_execution_is_decided():
    rng = random.Random(7)  # noqa: S311 - a reproducible simulation
    events = simulate_history(rng, operations=2000, keys=1, clients=8, info_rate=0.02)

    assert check(events, "linearizable").outcome == HOLDS
