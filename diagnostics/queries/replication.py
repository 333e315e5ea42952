"""Replication: standbys fed by this server, replication slots, and, when this server
is itself a standby, how far behind it is.

``pg_current_wal_lsn()`` fails on a standby, so byte lags are only computed on a
primary; connection details of standbys need pg_read_all_stats.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from diagnostics.runner import Query, Result, run


@dataclass(frozen=True)
class Standby:
    pid: int
    role: str | None
    application_name: str | None
    client_addr: str | None
    state: str | None
    sync_state: str | None
    sent_lsn: str | None
    replay_lsn: str | None
    write_lag_seconds: float | None
    flush_lag_seconds: float | None
    replay_lag_seconds: float | None
    replay_lag_bytes: int | None
    reply_time: dt.datetime | None


STANDBYS = Query(
    "standbys",
    """
SELECT pid, usename AS role, application_name, host(client_addr) AS client_addr, state,
       sync_state, sent_lsn::text, replay_lsn::text,
       extract(epoch FROM write_lag)::float AS write_lag_seconds,
       extract(epoch FROM flush_lag)::float AS flush_lag_seconds,
       extract(epoch FROM replay_lag)::float AS replay_lag_seconds,
       CASE WHEN NOT pg_is_in_recovery() AND replay_lsn IS NOT NULL
            THEN pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END
           AS replay_lag_bytes,
       reply_time
FROM pg_stat_replication
ORDER BY application_name, pid
""",
    Standby,
)


def standbys(alias: str) -> Result[Standby]:
    return run(alias, STANDBYS)


@dataclass(frozen=True)
class Slot:
    slot_name: str
    slot_type: str
    plugin: str | None
    database: str | None
    active: bool
    active_pid: int | None
    restart_lsn: str | None
    wal_status: str | None
    safe_wal_size: int | None
    retained_bytes: int | None


SLOTS = Query(
    "replication_slots",
    """
SELECT slot_name::text, slot_type, plugin::text, database::text, active, active_pid,
       restart_lsn::text, wal_status, safe_wal_size,
       CASE WHEN NOT pg_is_in_recovery() AND restart_lsn IS NOT NULL
            THEN pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END
           AS retained_bytes
FROM pg_replication_slots
ORDER BY active, slot_name
""",
    Slot,
)


def slots(alias: str) -> Result[Slot]:
    return run(alias, SLOTS)


@dataclass(frozen=True)
class Recovery:
    in_recovery: bool
    receive_lsn: str | None
    replay_lsn: str | None
    last_replay_at: dt.datetime | None
    replay_delay_seconds: float | None
    receiver_status: str | None
    sender_host: str | None


RECOVERY = Query(
    "recovery",
    """
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       pg_last_xact_replay_timestamp() AS last_replay_at,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float
           AS replay_delay_seconds,
       (SELECT status FROM pg_stat_wal_receiver) AS receiver_status,
       (SELECT sender_host FROM pg_stat_wal_receiver) AS sender_host
""",
    Recovery,
)


def recovery(alias: str) -> Result[Recovery]:
    return run(alias, RECOVERY)
