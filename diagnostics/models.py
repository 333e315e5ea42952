"""Statistics history of the diagnostics pages, and their permissions.

The tables stay in the ``analytics`` schema, where they were created (analytics 0002)
and where Metabase reads them (the ``database_size_history`` view); only the models'
home moved (diagnostics 0001 took them over in Django's state, nothing in the database
changed).
"""

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class StatsSnapshot(models.Model):
    """One capture of a database's statistics by ``manage.py snapshot_stats``.

    Keyed by the database *name* as well as the Django alias: two databases on one
    server must never mix (the project's documents record that bug).
    """

    id = models.BigAutoField(primary_key=True)
    alias = models.CharField(max_length=100)
    database = models.CharField(max_length=100)
    captured_at = models.DateTimeField(default=timezone.now, db_default=Now())
    database_size_bytes = models.BigIntegerField()
    connections_total = models.IntegerField()
    connections_active = models.IntegerField()
    connections_idle = models.IntegerField()
    connections_idle_in_transaction = models.IntegerField()
    max_connections = models.IntegerField()
    xact_commit = models.BigIntegerField(null=True)
    xact_rollback = models.BigIntegerField(null=True)
    blks_hit = models.BigIntegerField(null=True)
    blks_read = models.BigIntegerField(null=True)

    class Meta:
        db_table = 'analytics"."stats_snapshots'
        verbose_name = "statistics snapshot"
        ordering = ["-captured_at"]
        indexes = [
            models.Index(fields=["database", "-captured_at"], name="stats_snapshots_db_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.database} @ {self.captured_at:%Y-%m-%d %H:%M}"


class TableSizeSnapshot(models.Model):
    id = models.BigAutoField(primary_key=True)
    snapshot = models.ForeignKey(StatsSnapshot, on_delete=models.CASCADE, related_name="tables")
    schema_name = models.CharField(max_length=100)
    table_name = models.CharField(max_length=100)
    total_bytes = models.BigIntegerField()
    table_bytes = models.BigIntegerField()
    index_bytes = models.BigIntegerField()
    toast_bytes = models.BigIntegerField()
    row_estimate = models.BigIntegerField()

    class Meta:
        db_table = 'analytics"."table_size_snapshots'
        verbose_name = "table size snapshot"
        indexes = [
            models.Index(fields=["schema_name", "table_name"], name="table_size_snap_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}.{self.table_name}"


class QueryStatSnapshot(models.Model):
    """pg_stat_statements deltas since the previous snapshot (stats are never reset)."""

    id = models.BigAutoField(primary_key=True)
    snapshot = models.ForeignKey(StatsSnapshot, on_delete=models.CASCADE, related_name="queries")
    queryid = models.BigIntegerField()
    role_name = models.CharField(max_length=100, blank=True, default="")
    query = models.TextField()
    calls = models.BigIntegerField()
    total_exec_time_ms = models.FloatField()
    rows = models.BigIntegerField()
    shared_blks_hit = models.BigIntegerField(default=0)
    shared_blks_read = models.BigIntegerField(default=0)
    # Cumulative counters as read, so the next snapshot can compute its delta.
    calls_cumulative = models.BigIntegerField()
    total_exec_time_ms_cumulative = models.FloatField()
    rows_cumulative = models.BigIntegerField(default=0)
    shared_blks_hit_cumulative = models.BigIntegerField(default=0)
    shared_blks_read_cumulative = models.BigIntegerField(default=0)

    class Meta:
        db_table = 'analytics"."query_stat_snapshots'
        verbose_name = "query statistics snapshot"
        indexes = [models.Index(fields=["queryid"], name="query_stat_snap_qid_idx")]

    def __str__(self) -> str:
        return f"query {self.queryid}"


class Diagnostics(models.Model):
    """Holds the diagnostics pages' permissions; no table (managed = False).

    Four separate permissions: viewing, signalling backends (cancel/terminate),
    resetting pg_stat_statements, and running EXPLAIN ANALYZE (it executes a statement).
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_diagnostics", "Can view database diagnostics"),
            ("signal_backend", "Can cancel or terminate database sessions"),
            ("reset_query_stats", "Can reset query statistics"),
            ("explain_analyze", "Can run EXPLAIN ANALYZE of a recorded statement"),
        ]

    def __str__(self) -> str:
        return "diagnostics"
