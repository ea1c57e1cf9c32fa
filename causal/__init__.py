"""Causality for replicated values (no Django): vector clocks, dotted version vectors, hybrid
logical clocks, and the signed causal context clients carry. Shared by regions and quorum."""
