"""The diagnostics actions: cancel or terminate a session, terminate idle sessions,
reset pg_stat_statements. Each call is audited in the same transaction as the action.

The server decides whether the connected role may signal a session or reset the
statistics; its refusal is translated and recorded, never pre-empted. A session is
always identified by its pid AND its backend_start, checked in the same statement as
the signal, so a pid reused by a newer session is never signalled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext

from audit.services import record_activity
from diagnostics.queries import activity, server, statements
from diagnostics.redaction import redact_sql

QUERY_CHARS_IN_AUDIT = 10_000


@dataclass(frozen=True)
class Outcome:
    result: str  # signalled, not_found, hidden, refused, no_effect, reset, failed
    level: str  # success, warning, error (django.contrib.messages levels)
    message: str


def _audit(
    *,
    request: HttpRequest,
    action: str,
    resource_type: str,
    resource_id: str,
    object_repr: str,
    details: dict[str, Any],
) -> None:
    record_activity(
        actor=request.user,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        object_repr=object_repr,
        details=details,
        request=request,
    )


def _session_details(session: activity.Session | None) -> dict[str, Any]:
    if session is None:
        return {}
    return {
        "role": session.role,
        "application_name": session.application_name,
        "client_addr": session.client_addr,
        "state": session.state,
        "query": (redact_sql(session.query) or "")[:QUERY_CHARS_IN_AUDIT],
    }


def signal_backend(
    *,
    request: HttpRequest,
    alias: str,
    kind: str,
    pid: int,
    backend_start: dt.datetime,
) -> Outcome:
    """Cancel (``kind="cancel"``) or terminate one session of database ``alias``."""
    if kind not in {"cancel", "terminate"}:
        raise ValueError(f"unknown signal {kind!r}")
    info = server.server_info(alias).first()
    database = info.database if info else None
    target = activity.session(
        alias, pid=pid, backend_start=backend_start, portal_app=settings.PORTAL_APPLICATION_NAME
    ).first()
    with transaction.atomic():
        result = activity.signal(alias, kind=kind, pid=pid, backend_start=backend_start)
        row = result.first()
        if not result.ok:
            outcome = Outcome(
                "refused",
                "error",
                gettext("PostgreSQL refused: %(error)s") % {"error": result.error},
            )
        elif (row is None or not row.found) and activity.pid_hidden(alias, pid=pid):
            outcome = Outcome(
                "hidden",
                "error",
                gettext(
                    "Session %(pid)s is hidden from role %(role)s (it lacks pg_read_all_stats), "
                    "so it cannot be identified safely: nothing was signalled."
                )
                % {"pid": pid, "role": info.role if info else "?"},
            )
        elif row is None or not row.found:
            outcome = Outcome(
                "not_found",
                "warning",
                gettext(
                    "Session %(pid)s is gone (it ended, or its pid now belongs to a newer "
                    "session): nothing was signalled."
                )
                % {"pid": pid},
            )
        elif not row.signalled:
            outcome = Outcome(
                "no_effect",
                "warning",
                gettext("PostgreSQL did not signal session %(pid)s.") % {"pid": pid},
            )
        elif kind == "cancel" and target is not None and target.idle_in_transaction:
            outcome = Outcome(
                "signalled",
                "warning",
                gettext(
                    "Cancel sent to session %(pid)s, but it is idle in transaction, where "
                    "cancelling does nothing (it still holds its locks): terminate it instead."
                )
                % {"pid": pid},
            )
        else:
            outcome = Outcome(
                "signalled",
                "success",
                (
                    gettext("Cancelled the query of session %(pid)s.")
                    if kind == "cancel"
                    else gettext("Terminated session %(pid)s.")
                )
                % {"pid": pid},
            )
        _audit(
            request=request,
            action=f"diagnostics.{kind}_backend",
            resource_type="pg_backend",
            resource_id=str(pid),
            object_repr=f"{kind} pid {pid} on {database or alias}",
            details={
                "alias": alias,
                "database": database,
                "pid": pid,
                "backend_start": backend_start.isoformat(),
                **_session_details(target),
                "result": outcome.result,
                "message": outcome.message,
            },
        )
    return outcome


@dataclass(frozen=True)
class BulkOutcome:
    terminated: int
    gone: int
    refused: int
    messages: tuple[str, ...]


def terminate_idle(
    *,
    request: HttpRequest,
    alias: str,
    minutes: int,
    sessions: list[tuple[int, dt.datetime]],
) -> BulkOutcome:
    """Terminate the listed sessions that are still idle for over ``minutes``.

    One audit entry per session, all in one transaction with the signals.
    """
    info = server.server_info(alias).first()
    database = info.database if info else None
    listed = {
        (s.pid, s.backend_start): s
        for s in activity.idle_sessions(
            alias,
            minutes=minutes,
            include_portal=True,
            portal_app=settings.PORTAL_APPLICATION_NAME,
        )
    }
    terminated = gone = refused = 0
    messages: list[str] = []
    with transaction.atomic():
        for pid, backend_start in sessions:
            result = activity.terminate_if_idle(
                alias, pid=pid, backend_start=backend_start, minutes=minutes
            )
            row = result.first()
            if not result.ok:
                refused += 1
                status = "refused"
                messages.append(
                    gettext("Session %(pid)s: PostgreSQL refused: %(error)s")
                    % {"pid": pid, "error": result.error}
                )
            elif row is None or not row.found:
                gone += 1
                status = "not_found"
            elif row.signalled:
                terminated += 1
                status = "signalled"
            else:
                refused += 1
                status = "no_effect"
            _audit(
                request=request,
                action="diagnostics.terminate_backend",
                resource_type="pg_backend",
                resource_id=str(pid),
                object_repr=f"terminate idle pid {pid} on {database or alias}",
                details={
                    "alias": alias,
                    "database": database,
                    "pid": pid,
                    "backend_start": backend_start.isoformat(),
                    "idle_minutes": minutes,
                    **_session_details(listed.get((pid, backend_start))),
                    "result": status,
                },
            )
    return BulkOutcome(terminated, gone, refused, tuple(messages))


def reset_query_stats(*, request: HttpRequest, alias: str) -> Outcome:
    """Reset pg_stat_statements for the database of ``alias`` only."""
    info = server.server_info(alias).first()
    database = info.database if info else None
    with transaction.atomic():
        if info is None or not info.pgss_schema:
            outcome = Outcome(
                "failed", "error", gettext("pg_stat_statements is not installed in this database.")
            )
        else:
            result = statements.reset(alias, schema=info.pgss_schema)
            if result.ok:
                outcome = Outcome(
                    "reset",
                    "success",
                    gettext(
                        "Query statistics of database %(database)s were reset (other databases "
                        "on the server keep theirs)."
                    )
                    % {"database": database},
                )
            else:
                outcome = Outcome(
                    "refused",
                    "error",
                    gettext("PostgreSQL refused: %(error)s") % {"error": result.error},
                )
        _audit(
            request=request,
            action="diagnostics.reset_query_stats",
            resource_type="pg_stat_statements",
            resource_id=database or alias,
            object_repr=f"reset pg_stat_statements of {database or alias}",
            details={
                "alias": alias,
                "database": database,
                "extension_version": info.pgss_version if info else None,
                "result": outcome.result,
                "message": outcome.message,
            },
        )
    return outcome


@dataclass(frozen=True)
class LongOutcome:
    signalled: int
    gone: int
    refused: int
    messages: tuple[str, ...]


def signal_long_running(
    *,
    request: HttpRequest,
    alias: str,
    kind: str,
    seconds: int,
    sessions: list[tuple[int, dt.datetime]],
) -> LongOutcome:
    """Cancel or terminate the listed sessions still running a query for over ``seconds``.

    One audit entry per session, all in one transaction with the signals.
    """
    if kind not in {"cancel", "terminate"}:
        raise ValueError(f"unknown signal {kind!r}")
    info = server.server_info(alias).first()
    database = info.database if info else None
    listed = {
        (s.pid, s.backend_start): s
        for s in activity.long_sessions(
            alias,
            seconds=seconds,
            include_portal=True,
            portal_app=settings.PORTAL_APPLICATION_NAME,
        )
    }
    signalled = gone = refused = 0
    messages: list[str] = []
    with transaction.atomic():
        for pid, backend_start in sessions:
            result = activity.signal_if_long(
                alias, kind=kind, pid=pid, backend_start=backend_start, seconds=seconds
            )
            row = result.first()
            if not result.ok:
                refused += 1
                status = "refused"
                messages.append(
                    gettext("Session %(pid)s: PostgreSQL refused: %(error)s")
                    % {"pid": pid, "error": result.error}
                )
            elif row is None or not row.found:
                gone += 1
                status = "not_found"
            elif row.signalled:
                signalled += 1
                status = "signalled"
            else:
                refused += 1
                status = "no_effect"
            _audit(
                request=request,
                action=f"diagnostics.{kind}_backend",
                resource_type="pg_backend",
                resource_id=str(pid),
                object_repr=f"{kind} long-running pid {pid} on {database or alias}",
                details={
                    "alias": alias,
                    "database": database,
                    "pid": pid,
                    "backend_start": backend_start.isoformat(),
                    "running_longer_than_seconds": seconds,
                    **_session_details(listed.get((pid, backend_start))),
                    "result": status,
                },
            )
    return LongOutcome(signalled, gone, refused, tuple(messages))


def explain_analyze(
    *, request: HttpRequest, alias: str, database: str, queryid: int, text: str, run
) -> Any:
    """Run ``run(alias, text)`` (EXPLAIN ANALYZE, rolled back) and audit it, refused or not."""
    with transaction.atomic():
        plan = run(alias, text)
        _audit(
            request=request,
            action="diagnostics.explain_analyze",
            resource_type="pg_stat_statements",
            resource_id=str(queryid),
            object_repr=f"EXPLAIN ANALYZE of statement {queryid} on {database}",
            details={
                "alias": alias,
                "database": database,
                "queryid": queryid,
                "query": (redact_sql(text) or "")[:QUERY_CHARS_IN_AUDIT],
                "result": "ran" if plan.ok else "refused",
                "message": plan.error,
            },
        )
    return plan
