"""Writes to the audit trail. Every write goes through these functions.

Callers run them inside the same transaction as the change they record, so the change
and its audit row commit or roll back together (the admin's audited views are atomic,
see ``audit/admin_mixins.py``). Nothing here opens its own transaction or commits.

Whatever goes into ``details`` is passed through :func:`mask_secrets`: every value
under a key that names a secret (password, token, api key, ...) is replaced, however
deeply nested, so password hashes and credentials never reach the audit tables.
"""

import datetime
import decimal
import functools
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from django.db import models
from django.http import HttpRequest

from portal.request_context import (
    client_ip,
    client_trace_id,
    current_request,
    request_id,
    user_agent,
)

from .models import ActivityLog, SecurityEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import Permission

MASK = "********"
#: Words that make a key name a secret ("db_password", "apiKey", "client_secret"); a
#: word is delimited by non-letters after camelCase is split, so "tokens_used" is not.
SECRET_WORDS = re.compile(
    r"(?<![a-z])(pass|passwd|password\d*|passphrase|pwd|secrets?|token|api_?key|"
    r"private_?key|credentials?|authorization|cookies?|session_?(id|key)|signature|salt|"
    r"otp|dsn|csrf[a-z]*)(?![a-z])"
)


def is_secret_key(key: object) -> bool:
    return _is_secret_name(str(key))


@functools.lru_cache(maxsize=4096)
def _is_secret_name(key: str) -> bool:
    # Cached: the same few dozen keys recur in every row a list page masks.
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()
    return SECRET_WORDS.search(words) is not None


# Credentials embedded in strings: URLs with a password, bearer tokens.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]+@", re.IGNORECASE)
_BEARER = re.compile(r"\b(?P<head>bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
MAX_TEXT = 2000

# Actions written by the portal itself (diagnostics code may add its own).
CREATE = "create"
CHANGE = "change"
DELETE = "delete"
PURGE = "purge"


# --- Masking and snapshots ------------------------------------------------------


def _mask_leaves(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _mask_leaves(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_leaves(v) for v in value]
    if value is None or value == "":
        return value  # an empty secret reveals nothing, and "was it set?" is useful
    return MASK


def _mask_text(text: str, max_text: int | None = MAX_TEXT) -> str:
    # PostgreSQL text and jsonb cannot hold NUL; a hostile query string may carry one.
    text = text.replace("\x00", "\ufffd")
    # Each pattern only where its fixed part occurs: most values are short plain words.
    if "@" in text and "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
    if "bearer" in text.lower():
        text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
    if max_text is not None and len(text) > max_text:
        text = f"{text[:max_text]}… ({len(text) - max_text} more characters)"
    return text


def mask_secrets(value: Any, *, max_text: int | None = MAX_TEXT) -> Any:
    """A JSON-ready copy of ``value`` with every secret replaced by ``MASK``.

    Long strings are cut at ``max_text`` characters (None: kept whole, as the admin's
    pages and exports show values masked by this same function).
    """
    kind = type(value)
    # Exact types first: JSON read back from the database is only dicts, lists, strings,
    # numbers, booleans and None, and an ABC isinstance check costs ten times as much.
    if kind is str:
        return _mask_text(value, max_text)
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {
            _mask_text(str(k)): _mask_leaves(v)
            if is_secret_key(k)
            else mask_secrets(v, max_text=max_text)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_secrets(v, max_text=max_text) for v in value]
    value = jsonable(value)
    if isinstance(value, str):
        return _mask_text(value, max_text)
    return value


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it (dates as ISO text, decimals and UUIDs as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def resource_type(model: type[models.Model] | models.Model) -> str:
    """``app_label.modelname``, the audit trail's name for a model."""
    return model._meta.label_lower


def _related_label(obj: models.Model) -> str:
    if obj._meta.label_lower == "auth.permission":
        perm = cast("Permission", obj)
        return f"{perm.content_type.app_label}.{perm.codename}"
    return str(obj)


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The stored state of ``obj``: its columns and, when saved, its many-to-many sets.

    Values are raw (comparable); masking happens when an entry is written. Fields with
    ``auto_now`` are left out: they change on every save and say nothing about what
    the user changed.
    """
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if getattr(field, "auto_now", False):
            continue
        data[field.name] = jsonable(field.value_from_object(obj))
    if obj.pk is not None and not obj._state.adding:
        for field in obj._meta.many_to_many:
            data[field.name] = snapshot_m2m(obj, field.name)
    return data


def snapshot_m2m(obj: models.Model, field: str) -> list[str]:
    """The members of ``obj.<field>`` as sorted labels (``app.codename`` for permissions)."""
    related = getattr(obj, field).all()
    if related.model._meta.label_lower == "auth.permission":
        related = related.select_related("content_type")
    return sorted(_related_label(o) for o in related)


def stored_snapshot(model: type[models.Model], pk: Any) -> dict[str, Any] | None:
    """:func:`snapshot` of the row as the database has it now (None if gone)."""
    obj = model._base_manager.filter(pk=pk).first()
    return snapshot(obj) if obj is not None else None


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, dict]:
    """Changed fields as ``{field: {"old": ..., "new": ...}}`` (unmasked)."""
    before = before or {}
    after = after or {}
    changes = {}
    for name in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"old": old, "new": new}
    return changes


# --- Writing --------------------------------------------------------------------

_suspended: ContextVar[bool] = ContextVar("audit_suspended", default=False)


@contextmanager
def recording_suspended() -> Iterator[None]:
    """Write nothing while active: only for when the audit tables do not exist."""
    token = _suspended.set(True)
    try:
        yield
    finally:
        _suspended.reset(token)


def _actor(actor: Any | None, request: HttpRequest | None) -> Any | None:
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor
    return None


def record_activity(
    *,
    actor: Any | None = None,
    action: str,
    resource_type: str = "",
    resource_id: Any = "",
    object_repr: str = "",
    details: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> ActivityLog | None:
    """Append one entry to ``audit.activity_logs`` (None while recording is suspended).

    ``request`` defaults to the request being handled (bound by
    ``RequestContextMiddleware``) and ``actor`` to that request's user, so client IP,
    user agent and request id are filled in for callers deep in the stack.
    """
    if _suspended.get():
        return None
    fields = _activity_fields(
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        object_repr=object_repr,
        details=details,
        request=request,
    )
    return ActivityLog.objects.create(**fields)


def record_activities(entries: Iterable[Mapping[str, Any]]) -> list[ActivityLog]:
    """Append several entries at once (bulk actions); each mapping as :func:`record_activity`."""
    if _suspended.get():
        return []
    rows = [ActivityLog(**_activity_fields(**entry)) for entry in entries]
    return ActivityLog.objects.bulk_create(rows)


def _activity_fields(
    *,
    actor: Any | None = None,
    action: str,
    resource_type: str = "",
    resource_id: Any = "",
    object_repr: str = "",
    details: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    request = request if request is not None else current_request()
    actor = _actor(actor, request)
    return {
        "user_id": actor.pk if actor is not None else None,
        "actor_email": (getattr(actor, "email", "") or "")[:254] if actor is not None else "",
        "action": action[:50],
        "resource_type": resource_type[:100],
        "resource_id": str(resource_id if resource_id is not None else "")[:255],
        "object_repr": str(object_repr)[:500],
        "details": mask_secrets(dict(details or {})),
        "ip_address": client_ip(request),
        "user_agent": user_agent(request),
        "request_id": request_id(request)[:100],
        "client_trace_id": client_trace_id(request),
    }


def record_change(
    *,
    action: str,
    obj: models.Model,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    actor: Any | None = None,
    request: HttpRequest | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ActivityLog | None:
    """Record a create/change/delete of ``obj`` with its field diff.

    A change that changed nothing writes nothing (and returns None).
    """
    changes = diff(before, after)
    if action == CHANGE and not changes:
        return None
    return record_activity(
        actor=actor,
        action=action,
        resource_type=resource_type(obj),
        resource_id=obj.pk,
        object_repr=str(obj),
        details={"changes": changes, **(extra or {})},
        request=request,
    )


def record_cache_purge(
    *,
    deleted: int,
    actor: Any | None = None,
    request: HttpRequest | None = None,
    details: Mapping[str, Any] | None = None,
) -> ActivityLog | None:
    """The MCP tool-cache purge of expired entries: one entry with the count deleted.

    Call it in the same transaction as the purge, e.g.::

        with transaction.atomic():
            n = mcp_cache_purge_expired()
            record_cache_purge(deleted=n, request=request)
    """
    return record_activity(
        actor=actor,
        action=PURGE,
        resource_type="core.mcpcache",
        object_repr=f"{deleted} expired tool cache entries",
        details={"deleted": deleted, "scope": "expired", **(details or {})},
        request=request,
    )


def record_security_event(
    *,
    event_type: str,
    user: Any | None = None,
    email_attempted: str = "",
    request: HttpRequest | None = None,
    ip_address: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> SecurityEvent | None:
    """Append one entry to ``audit.security_events``.

    ``details`` is masked like activity details; the request id (and, for changes
    made by someone, the actor) are added to it.
    """
    if _suspended.get():
        return None
    request = request if request is not None else current_request()
    data = dict(details or {})
    if request is not None:
        data.setdefault("request_id", request_id(request))
        actor = _actor(None, request)
        if actor is not None and (user is None or actor.pk != user.pk):
            data.setdefault("actor_id", str(actor.pk))
            data.setdefault("actor_email", actor.email)
    return SecurityEvent.objects.create(
        event_type=event_type,
        user_id=getattr(user, "pk", None),  # None for no user and for an unsaved one
        email_attempted=(email_attempted or "")[:254],
        ip_address=ip_address or client_ip(request),
        user_agent=user_agent(request),
        details=mask_secrets(data),
        client_trace_id=client_trace_id(request),
    )


# --- What else leaves a trace: exports, cascades, bulk actions, own passwords -----

EXPORT = "export_csv"
CASCADE_DELETE = "cascade_delete"
BULK_ACTION = "bulk_action"
PASSWORD_CHANGE = "password_change"  # noqa: S105 (an action's name)
#: entries that record an operation as a whole, next to the per-row create/change/delete
TRACE_ACTIONS = (EXPORT, CASCADE_DELETE, BULK_ACTION, PASSWORD_CHANGE)
#: at most this many keys per model are listed in a cascade or bulk-action entry
MAX_LISTED = 1000


def query_filters(request: HttpRequest | None) -> dict[str, Any]:
    """The list's query string (filters, search, ordering) as ``{name: value or [values]}``."""
    if request is None:
        return {}
    return {k: v[0] if len(v) == 1 else v for k, v in request.GET.lists()}


def record_export(
    *,
    model: type[models.Model],
    rows: int,
    status: str,
    columns: list[str],
    request: HttpRequest | None = None,
    error: str = "",
) -> ActivityLog | None:
    """One CSV export: which list, with which filters, how many rows, how it ended.

    ``status`` is ``finished`` (every row sent), ``cut_off`` (the client went away or
    the server closed the stream before the end) or ``failed`` (an error while reading).
    """
    details: dict[str, Any] = {
        "filters": query_filters(request),
        "rows": rows,
        "status": status,
        "columns": columns,
    }
    if error:
        details["error"] = error
    return record_activity(
        action=EXPORT,
        resource_type=resource_type(model),
        object_repr=f"CSV export of {model._meta.verbose_name_plural}: {rows} rows, {status}",
        details=details,
        request=request,
    )


def cascade_of(objs: Iterable[models.Model], using: str) -> dict[str, dict[str, Any]]:
    """What deleting ``objs`` also removes, as ``{label: {"count": n, "ids": [...]}}``.

    Django's own ``Collector``, the one ``delete()`` runs, collects it: the objects it
    loads and the rows it deletes by query ("fast deletes", counted and listed here).
    The roots themselves are left out.
    """
    from django.db.models.deletion import Collector

    objs = list(objs)
    if not objs:
        return {}
    roots = {(resource_type(o), str(o.pk)) for o in objs}
    collector = Collector(using=using, origin=objs[0])
    collector.collect(objs)
    found: dict[str, dict[str, Any]] = {}

    def add(label: str, count: int, ids: list[str]) -> None:
        entry = found.setdefault(label, {"count": 0, "ids": []})
        entry["count"] += count
        entry["ids"].extend(ids[: max(0, MAX_LISTED - len(entry["ids"]))])

    for model, instances in collector.data.items():
        ids = [str(o.pk) for o in instances if (resource_type(model), str(o.pk)) not in roots]
        if ids:
            add(resource_type(model), len(ids), ids)
    for qs in collector.fast_deletes:
        count = qs.count()
        if count:
            ids = [str(pk) for pk in qs.values_list("pk", flat=True)[:MAX_LISTED]]
            add(resource_type(qs.model), count, ids)
    return found


def record_cascade(
    *,
    roots: list[tuple[str, str, str]],
    cascade: Mapping[str, Mapping[str, Any]],
    request: HttpRequest | None = None,
) -> ActivityLog | None:
    """One entry listing every row a delete of ``roots`` (label, pk, text) removed with it."""
    if not cascade:
        return None
    total = sum(int(v["count"]) for v in cascade.values())
    label = roots[0][0] if roots else ""
    return record_activity(
        action=CASCADE_DELETE,
        resource_type=label,
        resource_id=roots[0][1] if len(roots) == 1 else "",
        object_repr=f"{total} related rows removed with {len(roots)} {label}",
        details={
            "roots": [{"resource_type": t, "id": pk, "repr": r} for t, pk, r in roots],
            "removed": dict(cascade),
            "total": total,
        },
        request=request,
    )


def record_bulk_action(
    *,
    model: type[models.Model],
    name: str,
    pks: list[Any],
    count: int,
    select_across: bool,
    request: HttpRequest | None = None,
    outcome: str = "done",
) -> ActivityLog | None:
    """One admin action run on a selection of a list (whatever the action does itself)."""
    return record_activity(
        action=BULK_ACTION,
        resource_type=resource_type(model),
        object_repr=f"{name} on {count} {model._meta.verbose_name_plural}",
        details={
            "name": name,
            "count": count,
            "ids": [str(pk) for pk in pks[:MAX_LISTED]],
            "select_across": select_across,
            "filters": query_filters(request),
            "outcome": outcome,
        },
        request=request,
    )


def record_password_change(*, user: Any, request: HttpRequest | None = None) -> ActivityLog | None:
    """A password set outside an audited admin form (the user's own page, a shell)."""
    request = request if request is not None else current_request()
    actor = _actor(None, request)
    return record_activity(
        action=PASSWORD_CHANGE,
        resource_type=resource_type(user),
        resource_id=user.pk,
        object_repr=str(user),
        details={
            "own": actor is not None and actor.pk == user.pk,
            "path": request.path if request is not None else "",
        },
        request=request,
    )
