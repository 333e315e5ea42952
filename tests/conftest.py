"""Shared fixtures. Every test runs against real PostgreSQL (the embedded cluster)."""

# --- Database diagnostics (issue 4): roles, second connections and extra aliases.
pytest_plugins = ["tests.diagnostics_support"]
