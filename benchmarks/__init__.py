"""Benchmarks of the hebbian library: ``python -m benchmarks`` prints a table of ratios measured side by side.

See ``docs/performance.md`` for the method, the figures and what the profiles showed.
"""
