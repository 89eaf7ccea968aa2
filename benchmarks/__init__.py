"""Benchmarks of mock-planhat and the translator: ``python -m benchmarks`` (see run.py)."""
