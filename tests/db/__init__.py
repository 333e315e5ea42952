"""Test-suite database backend: ``portal.db`` plus a flush that can empty the audit tables.

The audit tables refuse TRUNCATE (append-only triggers), but the test runner empties
every table with TRUNCATE after each transactional test (``flush``: TransactionTestCase,
``transactional_db``, ``live_server``). Here the flush disables exactly those
TRUNCATE triggers around its TRUNCATE, inside the flush's own transaction: other
sessions never see them disabled, and only the table owner may do it. The suite
connects as the application role, which owns nothing, so the flush runs on a
connection of the migrator's (the owner of every table, tests/db/roles.py). The
production backend (``portal.db``) is unchanged: there, ``flush`` on the audit tables
is refused.
"""
