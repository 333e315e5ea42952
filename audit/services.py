"""Writes to the audit trail. Every write goes through these functions.

Callers run them inside the same transaction as the change they record, so the change
and its audit row commit or roll back together.
"""

from typing import Any

from django.http import HttpRequest

from .models import ActivityLog


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record_activity(
    *,
    actor: Any | None,
    action: str,
    resource_type: str = "",
    resource_id: str = "",
    object_repr: str = "",
    details: dict | None = None,
    request: HttpRequest | None = None,
) -> ActivityLog:
    """Append one entry to ``audit.activity_logs``."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return ActivityLog.objects.create(
        user_id=actor.pk if is_user else None,
        actor_email=getattr(actor, "email", "") if is_user else "",
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        object_repr=object_repr[:500],
        details=details or {},
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "") if request is not None else "",
    )
