"""Locust scenarios and the benchmark driver (``python -m loadtest.bench``)."""
