"""Helpers for table names of the form ``schema"."table``."""

SEPARATOR = '"."'


def split_table(db_table: str) -> tuple[str | None, str]:
    """Return ``(schema, table)``; schema is None for an unqualified name."""
    if SEPARATOR in db_table:
        schema, table = db_table.split(SEPARATOR, 1)
        return schema.strip('"'), table.strip('"')
    return None, db_table.strip('"')


def join_table(schema: str | None, table: str) -> str:
    """The inverse of :func:`split_table`, in the form models use in ``db_table``."""
    return f"{schema}{SEPARATOR}{table}" if schema else table
