"""Benchmarks and demos, outside the domain apps and outside the image: the Locust scenarios,
the benchmark driver (``python -m loadtest.bench``), its extras and the comparison commands
(``python -m loadtest.saga_bench`` / ``consistency_compare`` / ``sharding_compare``). Domain
apps import nothing from here; the State Lab reads stored runs through ``loadtest.results``."""
