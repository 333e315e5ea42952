"""Shared fixtures. Every test runs against real PostgreSQL (the embedded cluster)."""
