"""The harness that Kilde's tests and benchmarks share: real servers on loopback ports, the test corpus,
index snapshots and deterministic embedders.

Shipped like `haystack.testing`, so that `bench/` need not import `tests/`. Product code never imports it
(tests/test_architecture.py checks that). Submodules: `servers`, `corpus`, `snapshots`, `embedders`.
"""
