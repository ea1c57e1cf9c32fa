"""The signed causal context: round trip, and what a forged or malformed header gets."""

import pytest

from causal.clocks import VectorClock
from causal.context import ContextError, context_decode, context_encode

KEY = b"k" * 32


def test_a_context_round_trips():
    clock = VectorClock.of({"r1": 3, "r2": 1})

    header = context_encode(clock, key=KEY, scope="mv:cart")

    assert context_decode(header, key=KEY, scope="mv:cart") == clock


def test_no_header_is_an_empty_context():
    assert context_decode(None, key=KEY, scope="mv:cart") == VectorClock()


def test_a_context_issued_for_another_key_is_refused():
    header = context_encode(VectorClock.of({"r1": 3}), key=KEY, scope="mv:cart")

    with pytest.raises(ContextError, match="not issued"):
        context_decode(header, key=KEY, scope="mv:other")


def test_a_context_with_a_raised_counter_is_refused():
    header = context_encode(VectorClock.of({"r1": 3}), key=KEY, scope="s")
    forged = context_encode(VectorClock.of({"r1": 99}), key=b"x" * 32, scope="s")

    with pytest.raises(ContextError):
        context_decode(forged.split(".")[0] + "." + header.split(".")[1], key=KEY, scope="s")


@pytest.mark.parametrize("header", ["garbage", "a.b", "!!!.???", "x" * 5000])
def test_a_malformed_context_is_refused(header):
    with pytest.raises(ContextError):
        context_decode(header, key=KEY, scope="s")
