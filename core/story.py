"""What a session's page tells first: why it failed, who ran it, what it cost, and
how its executions followed each other."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from accounts.models import User
from portal.admin.changelist import parse_uuid, uuid_prefix_range
from portal.admin.display import duration_ms
from portal.db.rows import select

from .models import ExecutionHistory, Project

#: Where the gateway puts a failure in a session's metadata, most specific first.
FAILURE_KEYS = ("error", "failure_reason", "failure", "error_message", "reason", "exception")
#: Inside an error object: the parts worth a line.
_ERROR_PARTS = ("code", "type", "message", "detail")


@dataclass(frozen=True)
class Failure:
    summary: str
    traceback: str = ""


def failure_reason(metadata: Any) -> Failure | None:
    """The failure recorded in a session's metadata, as one line (and a traceback)."""
    if not isinstance(metadata, dict):
        return None
    for key in FAILURE_KEYS:
        value = metadata.get(key)
        if value in (None, "", {}, []):
            continue
        if isinstance(value, dict):
            parts = [str(value[p]) for p in _ERROR_PARTS if value.get(p) not in (None, "")]
            after = value.get("after_ms")
            if isinstance(after, int):
                parts.append(_("after %(duration)s") % {"duration": duration_ms(after)})
            trace = value.get("traceback") or metadata.get("traceback") or ""
            summary = " · ".join(parts) or ", ".join(f"{k}={v}" for k, v in value.items())
            return Failure(summary, str(trace))
        return Failure(str(value), str(metadata.get("traceback") or ""))
    return None


#: How a gateway caller id can name a portal user, each a unique index probe or a
#: primary-key range; plain SQL, as the ORM took longer to build the OR of four than
#: PostgreSQL took to answer it, on every session page.
_CALLER_MATCHES = {
    "keycloak": "keycloak_id = %(keycloak)s",
    "email": "email = %(email)s",
    "prefix": "(id >= %(low)s AND (%(high)s::uuid IS NULL OR id < %(high)s))",
    "uuid": "id = %(uuid)s",
}


def portal_user_for(user_id: str) -> User | None:
    """The portal user a gateway caller id names, if any, with its id and email loaded.

    The gateway names a caller by identity-provider id, email, or ``usr_`` and the
    first 24 hex digits of the user's id (at least 16 are required), or the user's id.
    """
    if not user_id:
        return None
    params: dict[str, Any] = {"keycloak": user_id, "email": user_id.lower()}
    matches = ["keycloak", "email"]
    bounds = uuid_prefix_range(user_id[4:]) if user_id.startswith("usr_") else None
    if bounds is not None and len(user_id) - 4 >= 16:
        params["low"], params["high"] = bounds
        matches.append("prefix")
    uuid = parse_uuid(user_id)
    if uuid is not None:
        params["uuid"] = uuid
        matches.append("uuid")
    where = " OR ".join(_CALLER_MATCHES[m] for m in matches)
    found = select(
        User,
        "SELECT id, email FROM auth.users WHERE " + where + " ORDER BY id LIMIT 1",  # noqa: S608 -- fixed fragments; the values are parameters
        params,
    )
    return found[0] if found else None


def project_for(metadata: Any) -> Project | None:
    if not isinstance(metadata, dict):
        return None
    project_id = parse_uuid(str(metadata.get("project_id") or ""))
    if project_id is None:
        return None
    return Project.objects.select_related("company").filter(pk=project_id).first()


@dataclass(frozen=True)
class Step:
    execution: ExecutionHistory
    offset: str  # since the session started
    gap: str  # idle time since the previous execution ended ("" for the first)
    long_gap: bool
    duration: str
    tokens: str


#: A pause between executions longer than this is marked on the timeline.
LONG_GAP_MS = 5 * 60_000


def timeline(started: datetime.datetime, executions: Sequence[ExecutionHistory]) -> list[Step]:
    steps = []
    previous_end: datetime.datetime | None = None
    for e in executions:
        gap_ms = None
        if previous_end is not None:
            # created_at is when the execution was recorded, at its end: it started
            # its own duration earlier, and the gap is the idle time before that.
            between = int((e.created_at - previous_end).total_seconds() * 1000)
            gap_ms = max(between - (e.execution_time_ms or 0), 0)
        offset_ms = max(int((e.created_at - started).total_seconds() * 1000), 0)
        steps.append(
            Step(
                execution=e,
                offset="+" + duration_ms(offset_ms),
                gap="" if gap_ms is None else duration_ms(gap_ms),
                long_gap=gap_ms is not None and gap_ms >= LONG_GAP_MS,
                duration=duration_ms(e.execution_time_ms),
                tokens="—"
                if e.tokens_used is None
                else number_format(e.tokens_used, force_grouping=True),
            )
        )
        previous_end = e.created_at
    return steps
