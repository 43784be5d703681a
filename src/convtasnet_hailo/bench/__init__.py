"""Benchmarks of the host paths (`bench`)."""
