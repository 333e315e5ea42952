"""Writes to the agent tables made by the admin.

Raw SQL here is deliberate: ``QuerySet.delete()`` falls back to loading every row into
Python as soon as any ``pre_delete``/``post_delete`` receiver is connected, and the
purge must stay one statement however many rows it removes.
"""

from __future__ import annotations

import datetime

from django.db import connections, router, transaction
from django.utils import timezone

from .models import McpCache

# The table name is the model's, quoted by the backend; values are parameters.
MCP_CACHE_PURGE_EXPIRED = "DELETE FROM {table} WHERE expires_at < %(now)s"


def mcp_cache_purge_expired(*, now: datetime.datetime | None = None) -> int:
    """Delete every cache entry that expired before ``now``; return how many.

    One set-based DELETE through the ``expires_at`` index: no row is loaded into
    Python, so it works the same on ten rows or ten million.
    """
    now = now or timezone.now()
    alias = router.db_for_write(McpCache)
    connection = connections[alias]
    statement = MCP_CACHE_PURGE_EXPIRED.format(
        table=connection.ops.quote_name(McpCache._meta.db_table)
    )
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(statement, {"now": now})
        return cursor.rowcount
