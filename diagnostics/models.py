"""Statistics history of the diagnostics pages, and their permissions.

The tables stay in the ``analytics`` schema, where they were created (analytics 0002)
and where Metabase reads them (the ``database_size_history`` view); only the models'
home moved (diagnostics 0001 took them over in Django's state, nothing in the database
changed).
"""

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StatsSnapshot(models.Model):
    """One capture of a database's statistics by ``manage.py snapshot_stats``.

    Keyed by the database *name* as well as the Django alias: two databases on one
    server must never mix (the project's documents record that bug).
    """

    id = models.BigAutoField(primary_key=True, verbose_name=_("ID"))
    alias = models.CharField(max_length=100, verbose_name=_("alias"))
    database = models.CharField(max_length=100, verbose_name=_("database"))
    captured_at = models.DateTimeField(
        default=timezone.now, db_default=Now(), verbose_name=_("captured at")
    )
    database_size_bytes = models.BigIntegerField(verbose_name=_("database size bytes"))
    connections_total = models.IntegerField(verbose_name=_("connections total"))
    connections_active = models.IntegerField(verbose_name=_("connections active"))
    connections_idle = models.IntegerField(verbose_name=_("connections idle"))
    connections_idle_in_transaction = models.IntegerField(
        verbose_name=_("connections idle in transaction")
    )
    max_connections = models.IntegerField(verbose_name=_("max connections"))
    xact_commit = models.BigIntegerField(null=True, verbose_name=_("xact commit"))
    xact_rollback = models.BigIntegerField(null=True, verbose_name=_("xact rollback"))
    blks_hit = models.BigIntegerField(null=True, verbose_name=_("blks hit"))
    blks_read = models.BigIntegerField(null=True, verbose_name=_("blks read"))

    class Meta:
        db_table = 'analytics"."stats_snapshots'
        verbose_name_plural = _("statistics snapshots")
        verbose_name = _("statistics snapshot")
        ordering = ["-captured_at"]
        indexes = [
            models.Index(fields=["database", "-captured_at"], name="stats_snapshots_db_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.database} @ {self.captured_at:%Y-%m-%d %H:%M}"


class TableSizeSnapshot(models.Model):
    id = models.BigAutoField(primary_key=True, verbose_name=_("ID"))
    snapshot = models.ForeignKey(
        StatsSnapshot, on_delete=models.CASCADE, related_name="tables", verbose_name=_("snapshot")
    )
    schema_name = models.CharField(max_length=100, verbose_name=_("schema name"))
    table_name = models.CharField(max_length=100, verbose_name=_("table name"))
    total_bytes = models.BigIntegerField(verbose_name=_("total bytes"))
    table_bytes = models.BigIntegerField(verbose_name=_("table bytes"))
    index_bytes = models.BigIntegerField(verbose_name=_("index bytes"))
    toast_bytes = models.BigIntegerField(verbose_name=_("toast bytes"))
    row_estimate = models.BigIntegerField(verbose_name=_("row estimate"))

    class Meta:
        db_table = 'analytics"."table_size_snapshots'
        verbose_name_plural = _("table size snapshots")
        verbose_name = _("table size snapshot")
        indexes = [
            models.Index(fields=["schema_name", "table_name"], name="table_size_snap_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}.{self.table_name}"


class QueryStatSnapshot(models.Model):
    """pg_stat_statements deltas since the previous snapshot (stats are never reset)."""

    id = models.BigAutoField(primary_key=True, verbose_name=_("ID"))
    snapshot = models.ForeignKey(
        StatsSnapshot, on_delete=models.CASCADE, related_name="queries", verbose_name=_("snapshot")
    )
    queryid = models.BigIntegerField(verbose_name=_("queryid"))
    role_name = models.CharField(
        max_length=100, blank=True, default="", verbose_name=_("role name")
    )
    query = models.TextField(verbose_name=_("query"))
    calls = models.BigIntegerField(verbose_name=_("calls"))
    total_exec_time_ms = models.FloatField(verbose_name=_("total exec time ms"))
    rows = models.BigIntegerField(verbose_name=_("rows"))
    shared_blks_hit = models.BigIntegerField(default=0, verbose_name=_("shared blks hit"))
    shared_blks_read = models.BigIntegerField(default=0, verbose_name=_("shared blks read"))
    # Cumulative counters as read, so the next snapshot can compute its delta.
    calls_cumulative = models.BigIntegerField(verbose_name=_("calls cumulative"))
    total_exec_time_ms_cumulative = models.FloatField(
        verbose_name=_("total exec time ms cumulative")
    )
    rows_cumulative = models.BigIntegerField(default=0, verbose_name=_("rows cumulative"))
    shared_blks_hit_cumulative = models.BigIntegerField(
        default=0, verbose_name=_("shared blks hit cumulative")
    )
    shared_blks_read_cumulative = models.BigIntegerField(
        default=0, verbose_name=_("shared blks read cumulative")
    )

    class Meta:
        db_table = 'analytics"."query_stat_snapshots'
        verbose_name_plural = _("query statistics snapshots")
        verbose_name = _("query statistics snapshot")
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
        verbose_name = _("diagnostics")
        verbose_name_plural = _("diagnostics")
        default_permissions = ()
        permissions = [
            ("view_diagnostics", _("Can view database diagnostics")),
            ("signal_backend", _("Can cancel or terminate database sessions")),
            ("reset_query_stats", _("Can reset query statistics")),
            ("explain_analyze", _("Can run EXPLAIN ANALYZE of a recorded statement")),
        ]

    def __str__(self) -> str:
        return "diagnostics"
