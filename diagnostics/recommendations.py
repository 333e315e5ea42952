"""The settings this project recommends, next to what the server actually uses.

Values follow the project's deployment (Cloud SQL, an OLTP gateway workload, the
diagnostics pages): what makes query statistics complete and problems visible in the
logs, and what keeps a forgotten transaction from holding locks and vacuum back.
Each entry says why, and how to change it on a self-managed server and on Cloud SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from diagnostics.formatting import bytes_label, ms_label
from diagnostics.queries.settings import Setting

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise


def _number(setting: Setting) -> float | None:
    try:
        return float(setting.setting) if setting.setting is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Recommendation:
    name: str
    recommended: str | _StrPromise
    why: str | _StrPromise
    value: str  # what ALTER SYSTEM / the Cloud SQL flag would set
    check: Callable[[Setting], bool | None] | None = None  # None: informational only


def _on(s: Setting) -> bool:
    return s.setting == "on"


def _at_least(limit: float) -> Callable[[Setting], bool | None]:
    def check(s: Setting) -> bool | None:
        n = _number(s)
        return None if n is None else n >= limit

    return check


def _between(low: float, high: float) -> Callable[[Setting], bool | None]:
    def check(s: Setting) -> bool | None:
        n = _number(s)
        return None if n is None else low <= n <= high

    return check


RECOMMENDATIONS: tuple[Recommendation, ...] = (
    Recommendation(
        "shared_preload_libraries",
        _("includes pg_stat_statements"),
        _("The Queries page and the query history need the library loaded at server start."),
        "pg_stat_statements",
        lambda s: None if s.setting is None else "pg_stat_statements" in s.setting,
    ),
    Recommendation(
        "pg_stat_statements.max",
        _("5000 or more"),
        _("Fewer slots evict statements and their history between snapshots."),
        "10000",
        _at_least(5000),
    ),
    Recommendation(
        "pg_stat_statements.track",
        _("top (or all)"),
        _("none stops collecting; all also counts statements inside functions."),
        "top",
        lambda s: s.setting in {"top", "all"},
    ),
    Recommendation(
        "track_io_timing",
        "on",
        _("Gives the I/O time of each statement on the Queries page (cheap on modern clocks)."),
        "on",
        _on,
    ),
    Recommendation(
        "track_activity_query_size",
        _("4096 bytes or more"),
        _("The default 1024 truncates the query text on the Activity page."),
        "4096",
        _at_least(4096),
    ),
    Recommendation(
        "idle_in_transaction_session_timeout",
        _("1 to 60 min"),
        _("A forgotten open transaction holds locks and stops vacuum from cleaning up."),
        "600000",
        _between(60_000, 3_600_000),
    ),
    Recommendation(
        "log_min_duration_statement",
        _("1 s or less (not -1)"),
        _("Slow statements appear in the logs with their parameters."),
        "1000",
        _between(0, 1000),
    ),
    Recommendation(
        "log_lock_waits",
        "on",
        _("Logs sessions that wait longer than deadlock_timeout for a lock."),
        "on",
        _on,
    ),
    Recommendation(
        "log_temp_files",
        _("10 MB or less (not -1)"),
        _("Statements spilling sorts and hashes to disk show up in the logs."),
        "10240",
        _between(0, 10240),
    ),
    Recommendation(
        "log_autovacuum_min_duration",
        _("10 s or less (not -1)"),
        _("Long autovacuum runs are logged, so bloat problems can be traced."),
        "10000",
        _between(0, 10_000),
    ),
    Recommendation(
        "autovacuum",
        "on",
        _("Without it dead tuples accumulate and transaction IDs are never frozen."),
        "on",
        _on,
    ),
    Recommendation(
        "random_page_cost",
        _("1.1 on SSD storage"),
        _("Cloud SQL uses SSDs; the default 4 makes the planner avoid index scans."),
        "1.1",
        _between(1.0, 2.0),
    ),
    Recommendation(
        "statement_timeout",
        _("0 server-wide; set per role"),
        _(
            "A server-wide timeout also kills migrations and maintenance; give the "
            "application and Metabase roles their own (ALTER ROLE ... SET statement_timeout)."
        ),
        "0",
        None,
    ),
    Recommendation(
        "password_encryption",
        "scram-sha-256",
        _("MD5 password hashes are deprecated."),
        "scram-sha-256",
        lambda s: s.setting == "scram-sha-256",
    ),
    Recommendation(
        "max_connections",
        _("above the portal's and gateway's pools combined"),
        _("Cloud Run instances x workers x threads (or pool size) must stay below it."),
        "",
        None,
    ),
    Recommendation(
        "shared_buffers",
        _("about 25 % of memory"),
        _("Cloud SQL sets it from the machine type; self-managed servers should too."),
        "",
        None,
    ),
    Recommendation(
        "work_mem", _("4 MB to 64 MB"), _("Per sort or hash, per query node."), "", None
    ),
    Recommendation(
        "maintenance_work_mem",
        _("256 MB or more"),
        _("Speeds up vacuum and index builds."),
        "",
        None,
    ),
)

KEY_SETTINGS: tuple[str, ...] = (
    *(r.name for r in RECOMMENDATIONS),
    "effective_cache_size",
    "autovacuum_max_workers",
    "autovacuum_naptime",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_analyze_scale_factor",
    "autovacuum_freeze_max_age",
    "checkpoint_timeout",
    "max_wal_size",
    "wal_level",
    "max_wal_senders",
    "max_replication_slots",
    "default_statistics_target",
    "deadlock_timeout",
    "lock_timeout",
    "idle_session_timeout",
    "jit",
    "ssl",
)

# Units pg_settings reports for the base value, and what one unit is in bytes.
_UNIT_BYTES = {"B": 1, "kB": 1024, "8kB": 8192, "MB": 1024 * 1024, "16MB": 16 * 1024 * 1024}
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000}


def display(setting: Setting) -> str:
    """The value with a readable unit ("4 MB", "10 s"), as people write them."""
    value = setting.setting
    if value is None:
        return gettext("hidden")
    unit = setting.unit or ""
    n = _number(setting)
    if n is not None and unit in _UNIT_BYTES and n >= 0:
        return bytes_label(n * _UNIT_BYTES[unit])
    if n is not None and unit in _UNIT_MS:
        if n < 0:
            return gettext("%(value)s (disabled)") % {"value": value}
        if n == 0:
            return gettext("%(value)s (disabled)") % {"value": 0}
        return ms_label(n * _UNIT_MS[unit])
    return f"{value} {unit}".strip()
