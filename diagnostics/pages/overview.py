"""Overview page: size, connections, throughput and the "needs attention" list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.translation import gettext, ngettext, pgettext_lazy

from diagnostics import charts, checks, formatting, history
from diagnostics.pages.common import Page
from diagnostics.queries import maintenance, overview

LEVEL_LABELS = {
    "error": pgettext_lazy("check level", "error"),
    "warning": pgettext_lazy("check level", "warning"),
    "ok": pgettext_lazy("check level", "ok"),
    "info": pgettext_lazy("check level", "info"),
}
LONG_QUERY_SECONDS = 60.0
IDLE_IN_TRANSACTION_SECONDS = 300.0


@dataclass(frozen=True)
class Check:
    """One line of the overview's "needs attention" list."""

    level: str  # error, warning, ok, info
    text: str
    slug: str
    meaning: str = ""  # what it means and how urgent it is
    fix: str = ""  # what to do, exactly

    @property
    def level_label(self) -> str:
        return str(LEVEL_LABELS.get(self.level, self.level))


def build(page: Page, params: Mapping[str, str]) -> None:
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
            key = row.state or gettext("hidden (needs pg_read_all_stats)")
            by_state[key] = by_state.get(key, 0) + row.count
        else:
            name = row.database or gettext("(no database)")
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
                gettext("%(used)s of %(max)s connections in use on this server.")
                % {"used": server_total, "max": info.max_connections},
                "activity",
                gettext(
                    "Urgent: when max_connections is reached, new connections (the portal, the "
                    'gateway, migrations) fail with "too many clients".'
                ),
                gettext(
                    "Look on Activity for idle sessions and pools that hold too many; terminate "
                    "long-idle ones there, and size the pools (instances x workers x pool size) "
                    "below max_connections."
                ),
            )
        )
    a = attention.first()
    if a is not None:
        if a.long_running:
            found.append(
                Check(
                    "warning",
                    ngettext(
                        "%(n)s query running longer than %(seconds)s s.",
                        "%(n)s queries running longer than %(seconds)s s.",
                        a.long_running,
                    )
                    % {"n": a.long_running, "seconds": f"{LONG_QUERY_SECONDS:.0f}"},
                    "activity",
                    gettext(
                        "A long query holds its locks and snapshot: it can block DDL and keep "
                        "vacuum from cleaning up. Urgent if it also blocks others (see Blocking)."
                    ),
                    gettext(
                        'Open Activity, filter by "Running longer than 60 s", and cancel the '
                        "ones that should not run that long (Cancel…, or cancel all longer than "
                        "N)."
                    ),
                )
            )
        if a.idle_in_transaction:
            found.append(
                Check(
                    "warning",
                    ngettext(
                        "%(n)s session idle in transaction for over %(minutes)s min.",
                        "%(n)s sessions idle in transaction for over %(minutes)s min.",
                        a.idle_in_transaction,
                    )
                    % {
                        "n": a.idle_in_transaction,
                        "minutes": f"{IDLE_IN_TRANSACTION_SECONDS / 60:.0f}",
                    },
                    "activity",
                    gettext(
                        "An open transaction nobody is using holds its locks and stops vacuum "
                        "from removing dead rows in every table. Urgent if it blocks others."
                    ),
                    gettext(
                        'Terminate it from Activity (filter "idle in transaction only"), fix the '
                        "code path that forgets to commit, and set "
                        "idle_in_transaction_session_timeout (Settings)."
                    ),
                )
            )
        if a.waiting_on_locks:
            found.append(
                Check(
                    "error",
                    ngettext(
                        "%(n)s session waiting for a lock.",
                        "%(n)s sessions waiting for a lock.",
                        a.waiting_on_locks,
                    )
                    % {"n": a.waiting_on_locks},
                    "blocking",
                    gettext(
                        "Urgent: every query needing the same lock queues behind them, so one "
                        "blocker can stall the application."
                    ),
                    gettext(
                        "Open Blocking: the session at the top of the tree holds the lock. "
                        "Cancel (or terminate, if it is idle in transaction) that one, not the "
                        "waiters."
                    ),
                )
            )
        if a.invalid_indexes:
            found.append(
                Check(
                    "warning",
                    ngettext(
                        "%(n)s invalid index (failed builds).",
                        "%(n)s invalid indexes (failed builds).",
                        a.invalid_indexes,
                    )
                    % {"n": a.invalid_indexes},
                    "indexes",
                    gettext(
                        "A failed CREATE INDEX CONCURRENTLY left an index that every write "
                        "updates but no query uses; a failed UNIQUE index enforces nothing. Not "
                        "urgent, unless uniqueness matters."
                    ),
                    gettext(
                        "Indexes lists each with its fix (for a UNIQUE one: the query finding "
                        "the duplicates to remove first)."
                    ),
                )
            )
        if a.dead_tuple_tables:
            found.append(
                Check(
                    "warning",
                    ngettext(
                        "%(n)s table with more than 20 %% dead rows.",
                        "%(n)s tables with more than 20 %% dead rows.",
                        a.dead_tuple_tables,
                    )
                    % {"n": a.dead_tuple_tables},
                    "maintenance",
                    gettext(
                        "Dead rows make scans read more pages and the table grow. Not urgent "
                        "unless it keeps growing: autovacuum is behind, off for the table, or "
                        "held back by an old transaction."
                    ),
                    gettext(
                        'Maintenance, sorted by dead share: check "Autovacuum at" and the '
                        "table's settings; run VACUUM (VERBOSE) on it, and end old transactions."
                    ),
                )
            )
        xid_ratio = max(a.oldest_xid_age, a.oldest_table_xid_age) / maintenance.XID_LIMIT
        if xid_ratio >= 0.5 or a.oldest_xid_age > info.autovacuum_freeze_max_age * 1.5:
            found.append(
                Check(
                    "error",
                    gettext(
                        "Transaction ID wraparound: the oldest unfrozen transaction is "
                        "%(ratio)s of the way to the limit."
                    )
                    % {"ratio": formatting.percent_label(xid_ratio)},
                    "maintenance",
                    gettext(
                        "Urgent: near the limit PostgreSQL refuses new transactions to protect "
                        "the data until the oldest tables are frozen."
                    ),
                    gettext(
                        "Maintenance lists the oldest tables: run VACUUM (FREEZE, VERBOSE) on "
                        "them and end old transactions and abandoned replication slots that hold "
                        "the horizon back."
                    ),
                )
            )
        if a.indexes_being_built or a.indexes_possibly_being_built:
            building = a.indexes_being_built + a.indexes_possibly_being_built
            if a.indexes_possibly_being_built:
                text = ngettext(
                    "%(n)s index being built (or failed: the role cannot tell) right now.",
                    "%(n)s indexes being built (or failed: the role cannot tell) right now.",
                    building,
                )
            else:
                text = ngettext(
                    "%(n)s index being built right now.",
                    "%(n)s indexes being built right now.",
                    building,
                )
            found.append(
                Check(
                    "info",
                    text % {"n": building},
                    "indexes",
                    gettext(
                        "A CREATE INDEX CONCURRENTLY in progress: the index is not valid until "
                        "it ends. Nothing is wrong."
                    ),
                    gettext("Wait for it to finish (Activity shows the session)."),
                )
            )
    elif attention.error:
        found.append(
            Check(
                "info",
                gettext("Some checks could not run: %(error)s") % {"error": attention.error},
                "privileges",
            )
        )
    if stat is not None:
        ratio = stat.cache_hit_ratio
        if ratio is not None and stat.blks_hit + stat.blks_read > 10_000 and ratio < 0.99:
            found.append(
                Check(
                    "warning",
                    gettext("Cache hit ratio %(ratio)s (below 99 %%).")
                    % {"ratio": formatting.percent_label(ratio)},
                    "maintenance",
                    gettext(
                        "More reads come from disk than an OLTP workload should need: queries "
                        "are slower. Not urgent on its own."
                    ),
                    gettext(
                        "Maintenance shows each table's cache hits: a big table read by "
                        "sequential scans usually needs an index (Queries: index suggestions); "
                        "otherwise give the server more memory (shared_buffers)."
                    ),
                )
            )
        if stat.deadlocks:
            found.append(
                Check(
                    "info",
                    ngettext(
                        "%(n)s deadlock since statistics were reset.",
                        "%(n)s deadlocks since statistics were reset.",
                        stat.deadlocks,
                    )
                    % {"n": stat.deadlocks},
                    "blocking",
                    gettext(
                        "PostgreSQL aborted one transaction of each deadlock; the application "
                        "saw an error. Worth fixing if the count grows."
                    ),
                    gettext(
                        "The server log (log_lock_waits = on) names the statements: make them "
                        "take their locks (rows, tables) in the same order."
                    ),
                )
            )
    if not pgss.ok:
        found.append(Check("warning", pgss.title, "queries"))
    if not info.has_read_all_stats:
        found.append(
            Check(
                "info",
                # The role's name is marked as an identifier (data), not a word of the text.
                format_html(
                    gettext(
                        "Role <code>{role}</code> lacks pg_read_all_stats: other roles' queries "
                        "are hidden."
                    ),
                    role=info.role,
                ),
                "privileges",
                gettext(
                    "These pages cannot show what other roles' sessions run, nor their "
                    "statements' text. Not urgent; the pages say where a figure is hidden."
                ),
                format_html(
                    gettext(
                        "<code>GRANT pg_monitor TO {role};</code> (Privileges lists every grant)."
                    ),
                    role=checks.ident(info.role),
                ),
            )
        )
    if info.track_io_timing != "on" or info.track_activity_query_size < 4096:
        found.append(
            Check(
                "info",
                gettext("Statistics settings are below the recommended values."),
                "privileges",
                gettext(
                    "Without track_io_timing the Queries page shows no I/O time; a small "
                    "track_activity_query_size cuts query texts on Activity. Not urgent."
                ),
                gettext(
                    "Settings shows the recommended values and how to set them (ALTER SYSTEM "
                    "or the Cloud SQL flags)."
                ),
            )
        )
    if not found:
        found.append(Check("ok", gettext("Nothing needs attention."), "overview"))

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
            gettext("Connections over time"),
            history.connection_series(alias, info.database),
            formatting.count_label,
        ),
        size_chart=charts.line_chart(
            gettext("Database size over time"),
            history.size_series(alias, info.database),
            formatting.bytes_label,
        ),
    )
