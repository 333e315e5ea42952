"""What each diagnostics page shows: one function per page, returning its context.

Each panel is the result of one query (rows or a message), so a missing privilege or
extension degrades one panel while the rest of the page renders. Views stay thin:
they resolve the database alias and the permissions, then call one of these.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.http import urlencode

from audit.models import ActivityLog
from diagnostics import charts, checks, formatting, history, recommendations, targets
from diagnostics.queries import (
    activity,
    blocking,
    indexes,
    maintenance,
    overview,
    replication,
    server,
    space,
    statements,
)
from diagnostics.queries import settings as settings_queries
from diagnostics.queries.server import ServerInfo

# The page slugs are a URL contract: /admin/diagnostics/<slug>/.
PAGES: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("activity", "Activity"),
    ("blocking", "Blocking"),
    ("queries", "Queries"),
    ("space", "Space"),
    ("indexes", "Indexes"),
    ("maintenance", "Maintenance"),
    ("settings", "Settings"),
    ("privileges", "Privileges"),
    ("replication", "Replication"),
)
TITLES = dict(PAGES)

LONG_QUERY_SECONDS = 60.0
IDLE_IN_TRANSACTION_SECONDS = 300.0
STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)


def page_url(slug: str, alias: str, **params: Any) -> str:
    name = "admin:diagnostics" if slug == "overview" else f"admin:diagnostics_{slug}"
    return f"{reverse(name)}?{urlencode({'db': alias, **params})}"


@dataclass(frozen=True)
class Check:
    """One line of the overview's "needs attention" list."""

    level: str  # error, warning, ok, info
    text: str
    slug: str


@dataclass
class Page:
    """What every page gets: the database, the server facts, and its own panels."""

    alias: str
    info: ServerInfo | None
    info_error: str | None
    panels: dict[str, Any] = field(default_factory=dict)


def base(alias: str) -> Page:
    result = server.server_info(alias)
    return Page(alias=alias, info=result.first(), info_error=result.error)


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


# --- Overview -------------------------------------------------------------------------


def overview_page(page: Page) -> None:
    info = page.info
    alias = page.alias
    if info is None:
        return
    stats = overview.database_stats(alias)
    size = overview.database_size(alias)
    conns = overview.connections_by_state(alias)
    attention = overview.attention(
        alias, long_seconds=LONG_QUERY_SECONDS, idle_seconds=IDLE_IN_TRANSACTION_SECONDS
    )
    pgss = checks.statements_status(alias, info)

    by_state: dict[str, int] = {}
    other_databases: dict[str, int] = {}
    server_total = 0
    for row in conns:
        server_total += row.count
        if row.database == info.database:
            key = row.state or "hidden (needs pg_read_all_stats)"
            by_state[key] = by_state.get(key, 0) + row.count
        else:
            name = row.database or "(no database)"
            other_databases[name] = other_databases.get(name, 0) + row.count

    rate = None
    stat = stats.first()
    if stat is not None:
        epoch = f"{info.started_at.isoformat()}/{stat.stats_reset}"
        rate = history.transactions_per_second(
            alias,
            info.database,
            transactions=stat.transactions,
            sampled_at=stat.sampled_at,
            epoch=epoch,
            stats_reset=stat.stats_reset,
        )

    found: list[Check] = []
    usage = server_total / info.max_connections if info.max_connections else 0
    if conns.ok and usage >= 0.8:
        found.append(
            Check(
                "error",
                f"{server_total} of {info.max_connections} connections in use on this server.",
                "activity",
            )
        )
    a = attention.first()
    if a is not None:
        if a.long_running:
            found.append(
                Check(
                    "warning",
                    f"{_n(a.long_running, 'query', 'queries')} running longer than "
                    f"{LONG_QUERY_SECONDS:.0f} s.",
                    "activity",
                )
            )
        if a.idle_in_transaction:
            found.append(
                Check(
                    "warning",
                    f"{_n(a.idle_in_transaction, 'session')} idle in "
                    f"transaction for over {IDLE_IN_TRANSACTION_SECONDS / 60:.0f} "
                    "min.",
                    "activity",
                )
            )
        if a.waiting_on_locks:
            found.append(
                Check(
                    "error", f"{_n(a.waiting_on_locks, 'session')} waiting for a lock.", "blocking"
                )
            )
        if a.invalid_indexes:
            found.append(
                Check(
                    "warning",
                    f"{_n(a.invalid_indexes, 'invalid index', 'invalid indexes')}.",
                    "indexes",
                )
            )
        if a.dead_tuple_tables:
            found.append(
                Check(
                    "warning",
                    f"{_n(a.dead_tuple_tables, 'table')} with more than 20 % dead rows.",
                    "maintenance",
                )
            )
        xid_ratio = max(a.oldest_xid_age, a.oldest_table_xid_age) / maintenance.XID_LIMIT
        if xid_ratio >= 0.5 or a.oldest_xid_age > info.autovacuum_freeze_max_age * 1.5:
            found.append(
                Check(
                    "error",
                    "Transaction ID wraparound: the oldest unfrozen "
                    f"transaction is {formatting.percent_label(xid_ratio)} of the "
                    "way to the limit.",
                    "maintenance",
                )
            )
    elif attention.error:
        found.append(Check("info", f"Some checks could not run: {attention.error}", "privileges"))
    if stat is not None:
        ratio = stat.cache_hit_ratio
        if ratio is not None and stat.blks_hit + stat.blks_read > 10_000 and ratio < 0.99:
            found.append(
                Check(
                    "warning",
                    f"Cache hit ratio {formatting.percent_label(ratio)} (below 99 %).",
                    "settings",
                )
            )
        if stat.deadlocks:
            found.append(
                Check(
                    "info",
                    f"{_n(stat.deadlocks, 'deadlock')} since statistics were reset.",
                    "blocking",
                )
            )
    if not pgss.ok:
        found.append(Check("warning", pgss.title, "queries"))
    if not info.has_read_all_stats:
        found.append(
            Check(
                "info",
                f"Role {info.role} lacks pg_read_all_stats: other roles' queries are hidden.",
                "privileges",
            )
        )
    if info.track_io_timing != "on" or info.track_activity_query_size < 4096:
        found.append(
            Check("info", "Statistics settings are below the recommended values.", "privileges")
        )
    if not found:
        found.append(Check("ok", "Nothing needs attention.", "overview"))

    page.panels.update(
        stats=stats,
        stat=stat,
        size=size,
        connections=conns,
        by_state=sorted(by_state.items()),
        other_databases=sorted(other_databases.items()),
        server_total=server_total,
        connection_ratio=usage,
        rate=rate,
        checks=found,
        connections_chart=charts.line_chart(
            "Connections over time",
            history.connection_series(alias, info.database),
            formatting.count_label,
        ),
        size_chart=charts.line_chart(
            "Database size over time",
            history.size_series(alias, info.database),
            formatting.bytes_label,
        ),
    )


# --- Activity -------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityFilters:
    state: str | None
    min_seconds: float | None
    idle_in_transaction: bool
    errors: tuple[str, ...]

    @property
    def active(self) -> bool:
        return bool(self.state or self.min_seconds is not None or self.idle_in_transaction)


def activity_filters(params: Mapping[str, str]) -> ActivityFilters:
    errors = []
    state = params.get("state") or None
    if state is not None and state not in STATES:
        errors.append(f"Unknown state {state[:40]!r}: filter ignored.")
        state = None
    min_seconds = None
    raw = (params.get("min_seconds") or "").strip()
    if raw:
        try:
            min_seconds = float(raw)
            if not 0 <= min_seconds <= 10**7:
                raise ValueError
        except ValueError:
            errors.append("Running longer than: enter a number of seconds; filter ignored.")
            min_seconds = None
    idle_in_tx = params.get("idle_in_transaction") in {"1", "on", "true"}
    return ActivityFilters(state, min_seconds, idle_in_tx, tuple(errors))


def activity_page(page: Page, params: Mapping[str, str]) -> None:
    filters = activity_filters(params)
    rows = activity.sessions(
        page.alias,
        portal_app=settings.PORTAL_APPLICATION_NAME,
        state=filters.state,
        idle_in_transaction=filters.idle_in_transaction,
        min_seconds=filters.min_seconds,
    )
    hidden = sum(1 for r in rows if r.hidden)
    page.panels.update(
        filters=filters,
        states=STATES,
        sessions=rows,
        hidden=hidden,
        truncated_at=page.info.track_activity_query_size if page.info else None,
    )


# --- Blocking -------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeRow:
    session: blocking.LockSession
    depth: int
    is_root: bool
    blocked_count: int  # sessions waiting behind it, directly or not
    repeated: bool  # already shown under another blocker


def blocking_tree(rows: tuple[blocking.LockSession, ...]) -> list[TreeRow]:
    """Roots (blocking others, waiting for nobody) first, most blocked sessions first.

    A session queued behind several others appears under each of them; its subtree is
    shown once. Cycles (a deadlock before the detector resolves it) have no root, so
    their oldest member is shown as one.
    """
    by_pid = {r.pid: r for r in rows}
    children: dict[int, list[int]] = {pid: [] for pid in by_pid}
    for r in rows:
        for blocker in r.blocked_by:
            if blocker in children:
                children[blocker].append(r.pid)

    def reach(pid: int) -> set[int]:
        seen: set[int] = set()
        stack = list(children.get(pid, ()))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(children.get(current, ()))
        return seen

    reached = {pid: reach(pid) for pid in by_pid}
    roots = [pid for pid, r in by_pid.items() if not r.blocked_by and children[pid]]
    covered = set().union(*(reached[p] for p in roots), set(roots)) if roots else set()
    leftovers = [pid for pid in by_pid if pid not in covered and children[pid]]
    if leftovers:  # a cycle: pick its oldest member as the root
        oldest = min(
            leftovers,
            key=lambda p: (
                by_pid[p].xact_start is None,
                by_pid[p].xact_start or dt.datetime.max,
                p,
            ),
        )
        roots.append(oldest)

    def age(pid: int) -> float:
        return by_pid[pid].xact_seconds or 0.0

    roots.sort(key=lambda p: (-len(reached[p]), -age(p), p))
    out: list[TreeRow] = []
    shown: set[int] = set()

    def walk(pid: int, depth: int) -> None:
        repeated = pid in shown
        out.append(TreeRow(by_pid[pid], min(depth, 6), depth == 0, len(reached[pid]), repeated))
        if repeated:
            return
        shown.add(pid)
        for child in sorted(children[pid], key=lambda p: (-len(reached[p]), p)):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return out


def blocking_page(page: Page) -> None:
    if page.info is None:
        return
    result = blocking.blocking(page.alias, server_major=page.info.major)
    page.panels.update(
        blocking=result,
        tree=blocking_tree(result.rows) if result.ok else [],
    )


# --- Queries --------------------------------------------------------------------------


def last_portal_reset(alias: str, database: str) -> dt.datetime | None:
    entry = (
        ActivityLog.objects.filter(
            action="diagnostics.reset_query_stats",
            resource_type="pg_stat_statements",
            resource_id=database,
            details__alias=alias,
            details__result="reset",
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return entry


def queries_page(page: Page, params: Mapping[str, str]) -> None:
    info = page.info
    if info is None:
        return
    status = checks.statements_status(page.alias, info)
    order = params.get("order") if params.get("order") in statements.ORDERS else "total"
    include_portal = params.get("include_portal") in {"1", "on", "true"}
    search = (params.get("q") or "").strip()[:200] or None
    page.panels.update(
        search=search or "",
        status=status,
        order=order,
        include_portal=include_portal,
        orders=[
            ("total", "total time"),
            ("mean", "mean time"),
            ("calls", "calls"),
            ("rows", "rows"),
            ("io", "I/O"),
        ],
    )
    if not status.ok or not info.pgss_schema:
        return
    top = statements.top_statements(
        page.alias,
        schema=info.pgss_schema,
        version=info.pgss_version_tuple,
        order=order,
        include_portal=include_portal,
        search=search,
    )
    since = None
    dealloc = None
    if info.pgss_version_tuple >= (1, 9):
        stats_info = statements.statements_info(page.alias, schema=info.pgss_schema).first()
        if stats_info is not None:
            since = stats_info.stats_reset
            dealloc = stats_info.dealloc
    portal_reset = last_portal_reset(page.alias, info.database)
    if portal_reset is not None and (since is None or portal_reset > since):
        since = portal_reset
    row_since = [r.stats_since for r in top if r.stats_since is not None]
    first = top.first()
    chart_items = [
        (
            formatting.mask_secrets(r.query) if not r.hidden else f"(hidden) queryid {r.queryid}",
            r.total_ms,
        )
        for r in sorted(top.rows, key=lambda r: r.total_ms, reverse=True)[:10]
    ]
    page.panels.update(
        top=top,
        since=since,
        oldest_row_since=min(row_since) if row_since else None,
        dealloc=dealloc,
        entries_total=first.entries_total if first else 0,
        hidden_total=first.hidden_total if first else 0,
        io_timing=info.track_io_timing == "on",
        chart=charts.bar_chart("Top queries by total time", chart_items, formatting.ms_label),
    )


# --- Space ----------------------------------------------------------------------------


def space_page(page: Page) -> None:
    info = page.info
    if info is None:
        return
    tables = space.table_sizes(page.alias)
    idx = space.index_sizes(page.alias)
    groups: dict[str, dict[str, Any]] = {}
    for g in [*space.SCHEMA_GROUPS, "others"]:
        groups[g] = {
            "name": g,
            "schemas": [],
            "tables": [],
            "indexes": [],
            "total": 0,
            "estimated": False,
        }
    for row in tables:
        group = groups[row.grp]
        if row.kind == "schema":
            group["schemas"].append(row)
            group["total"] += row.estimated_bytes or 0
            group["estimated"] = group["estimated"] or not row.measured
        elif not row.locked:
            group["tables"].append(row)
    for row in idx:
        groups[row.grp]["indexes"].append(row)
    locked = [r for r in tables if r.kind == "table" and r.locked]
    page.panels.update(
        size=overview.database_size(page.alias),
        tables=tables,
        index_sizes=idx,
        groups=[g for g in groups.values() if g["schemas"]],
        estimated=any(g["estimated"] for g in groups.values()),
        locked=locked,
        size_chart=charts.line_chart(
            "Database size over time",
            history.size_series(page.alias, info.database),
            formatting.bytes_label,
        ),
        tables_chart=charts.line_chart(
            "Largest tables over time",
            history.top_table_series(page.alias, info.database),
            formatting.bytes_label,
        ),
    )


# --- Indexes --------------------------------------------------------------------------


def indexes_page(page: Page) -> None:
    info = page.info
    if info is None:
        return
    stats = overview.database_stats(page.alias).first()
    bloat = indexes.index_bloat(page.alias)
    page.panels.update(
        stats_since=stats.stats_reset if stats else None,
        stats_known=stats is not None,
        unused=indexes.unused_indexes(page.alias, server_major=info.major),
        duplicates=indexes.duplicate_indexes(page.alias),
        invalid=indexes.invalid_indexes(page.alias),
        bloat=bloat,
        bloat_without_stats=sum(1 for b in bloat if not b.has_stats),
        has_last_idx_scan=info.major >= 16,
    )


# --- Maintenance ----------------------------------------------------------------------


def maintenance_page(page: Page) -> None:
    info = page.info
    if info is None:
        return
    seqs = maintenance.sequences(page.alias)
    first = seqs.first()
    page.panels.update(
        dead=maintenance.dead_tuples(page.alias),
        progress=maintenance.vacuum_progress(page.alias),
        database_ages=maintenance.database_ages(page.alias),
        table_ages=maintenance.table_ages(page.alias),
        freeze_max_age=info.autovacuum_freeze_max_age,
        xid_limit=maintenance.XID_LIMIT,
        sequences=seqs,
        readable_sequences=[s for s in seqs if s.readable],
        unreadable_sequences=[s for s in seqs if not s.readable],
        unreadable_total=first.unreadable_total if first else 0,
        grant_all_sequences=sorted({s.schema for s in seqs if not s.readable}),
        role_ident=checks.ident(info.role),
    )


# --- Settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingRow:
    name: str
    actual: str
    source: str | None
    where: str | None
    recommended: str | None
    ok: bool | None
    why: str | None
    fix_sql: str | None
    fix_cloud_sql: str | None
    restart: bool
    pending_restart: bool
    hidden: bool


def settings_page(page: Page) -> None:
    if page.info is None:
        return
    result = settings_queries.settings_named(page.alias, list(recommendations.KEY_SETTINGS))
    by_name = {s.name: s for s in result}
    # The page's own statement sets these two locally: show the session's own values.
    for own in ("statement_timeout", "lock_timeout"):
        if own in by_name:
            by_name[own] = dataclasses.replace(
                by_name[own], setting=by_name[own].reset_val, source="session default"
            )
    rows = []
    for name in recommendations.KEY_SETTINGS:
        rec = next((r for r in recommendations.RECOMMENDATIONS if r.name == name), None)
        s = by_name.get(name)
        if s is None:
            rows.append(
                SettingRow(
                    name,
                    "hidden or not available",
                    None,
                    None,
                    rec.recommended if rec else None,
                    None,
                    rec.why if rec else None,
                    None,
                    None,
                    False,
                    False,
                    True,
                )
            )
            continue
        ok = rec.check(s) if rec and rec.check else None
        fix_sql = fix_cloud = None
        if rec and ok is False and rec.value:
            fix_sql = f"ALTER SYSTEM SET {checks.ident(name)} = '{rec.value}';" + (
                "" if s.context == "postmaster" else "\nSELECT pg_reload_conf();"
            )
            flag = (
                "cloudsql.enable_pg_stat_statements=on"
                if name == "shared_preload_libraries"
                else f"{name}={rec.value}"
            )
            fix_cloud = f"gcloud sql instances patch INSTANCE --database-flags={flag}"
        where = f"{s.sourcefile}:{s.sourceline}" if s.sourcefile else None
        rows.append(
            SettingRow(
                name,
                recommendations.display(s),
                s.source,
                where,
                rec.recommended if rec else None,
                ok,
                rec.why if rec else s.short_desc,
                fix_sql,
                fix_cloud,
                s.context == "postmaster",
                s.pending_restart,
                False,
            )
        )
    page.panels.update(
        settings=result,
        recommended=[r for r in rows if r.recommended],
        other=[r for r in rows if not r.recommended],
        hidden=[r.name for r in rows if r.hidden],
        cloud_sql_note=checks.CLOUD_SQL_FLAGS_NOTE,
    )


# --- Privileges -----------------------------------------------------------------------


def privileges_page(page: Page) -> None:
    info = page.info
    if info is None:
        return
    result = settings_queries.privileges(page.alias)
    p = result.first()
    found = (
        checks.privilege_checks(p, info, checks.statements_status(page.alias, info)) if p else []
    )
    page.panels.update(
        privileges=result,
        checks=found,
        # The statements to run in the database (server settings are instance flags).
        grants=[
            f.command
            for c in found
            for f in c.fixes
            if f.command.startswith(("GRANT", "CREATE", "ALTER EXTENSION"))
        ],
    )


# --- Replication ----------------------------------------------------------------------


def replication_page(page: Page) -> None:
    if page.info is None:
        return
    standbys = replication.standbys(page.alias)
    slots = replication.slots(page.alias)
    recovery = replication.recovery(page.alias)
    rec = recovery.first()
    page.panels.update(
        standbys=standbys,
        slots=slots,
        recovery=recovery,
        is_standby=bool(rec and rec.in_recovery),
        nothing=standbys.ok
        and slots.ok
        and not standbys.rows
        and not slots.rows
        and not (rec and rec.in_recovery),
    )


BUILDERS = {
    "overview": lambda page, params: overview_page(page),
    "activity": activity_page,
    "blocking": lambda page, params: blocking_page(page),
    "queries": queries_page,
    "space": lambda page, params: space_page(page),
    "indexes": lambda page, params: indexes_page(page),
    "maintenance": lambda page, params: maintenance_page(page),
    "settings": lambda page, params: settings_page(page),
    "privileges": lambda page, params: privileges_page(page),
    "replication": lambda page, params: replication_page(page),
}


def build(slug: str, alias: str, params: Mapping[str, str]) -> Page:
    page = base(alias)
    BUILDERS[slug](page, params)
    return page


def selector(alias: str) -> list[tuple[str, str, bool]]:
    return [(a, targets.describe(a), a == alias) for a in targets.aliases()]
