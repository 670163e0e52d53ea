"""Benchmarks of syncd against the devstack (see README.md)."""
