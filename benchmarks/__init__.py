"""Benchmarks of pyr against rioxarray, pyramids-core and hand-written lower bounds.

Run ``python -m benchmarks.run --small`` (a couple of minutes) or
``python -m benchmarks.run`` (the full Sentinel-2-sized series). See
``docs/benchmarks.md`` for the figures and what limits each pipeline.
"""
