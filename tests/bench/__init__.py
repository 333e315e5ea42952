"""Benchmarks (``make bench``): the portal's admin against Django's stock admin."""
