"""Every SQL statement of the diagnostics pages, one module per concern.

Each statement is a named constant wrapped in a :class:`~diagnostics.runner.Query`
with the frozen dataclass its rows become, and one typed function runs it through
:func:`~diagnostics.runner.run`. Values are always parameters; identifiers
(the schema of pg_stat_statements) go through ``psycopg.sql.Identifier``.
"""
