"""The audit trail, in the ``audit`` schema.

Rows are evidence: the user reference is a plain column without a database foreign
key (``db_constraint=False``), so deleting a user neither cascades into nor updates
audit rows, and ``actor_email`` keeps who it was at the time.
"""

from django.conf import settings
from django.db import models

from portal.db.fields import created_at, uuid_pk


class ChainedRow(models.Model):
    """The hash-chain columns, all set by the database's insert trigger (audit/chain.py).

    Whatever a client sends for them (or for ``created_at``) is overwritten.
    """

    chain_seq = models.BigIntegerField(
        null=True, unique=True, editable=False, verbose_name="chain sequence"
    )
    prev_hash = models.BinaryField(null=True, editable=False, verbose_name="previous hash")
    row_hash = models.BinaryField(null=True, editable=False, verbose_name="row hash")

    class Meta:
        abstract = True


class ActivityLog(ChainedRow):
    id = uuid_pk()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the (user, created_at) index serves it
        related_name="+",
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=50)
    resource_type = models.CharField(max_length=100, blank=True, default="")
    resource_id = models.CharField(max_length=255, blank=True, default="")
    object_repr = models.CharField(max_length=500, blank=True, default="")
    details = models.JSONField(default=dict, blank=True, db_default={})
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=100, blank=True, default="")
    # The trace id the request came with (Cloud Run / traceparent): chosen upstream,
    # so kept apart from request_id, which the portal generates.
    client_trace_id = models.CharField(max_length=32, blank=True, default="", db_default="")
    created_at = created_at()

    class Meta:
        db_table = 'audit"."activity_logs'
        verbose_name = "activity log entry"
        verbose_name_plural = "activity log"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="activity_logs_user_idx"),
            models.Index(fields=["-created_at"], name="activity_logs_created_idx"),
            models.Index(fields=["resource_type", "resource_id"], name="activity_logs_res_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type} {self.resource_id}".strip()


class SecurityEvent(ChainedRow):
    class EventType(models.TextChoices):
        LOGIN_SUCCESS = "login_success", "Login success"
        LOGIN_FAILURE = "login_failure", "Login failure"
        LOGOUT = "logout", "Logout"
        LOCKOUT = "lockout", "Lockout"
        PASSWORD_CHANGE = "password_change", "Password change"
        PERMISSION_CHANGE = "permission_change", "Permission change"
        GROUP_CHANGE = "group_change", "Group change"

    id = uuid_pk()
    event_type = models.CharField(max_length=50, choices=EventType)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the (user, created_at) index serves it
        related_name="+",
    )
    email_attempted = models.CharField(max_length=254, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True, db_default={})
    client_trace_id = models.CharField(max_length=32, blank=True, default="", db_default="")
    created_at = created_at()

    class Meta:
        db_table = 'audit"."security_events'
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="security_events_created_idx"),
            models.Index(fields=["event_type", "-created_at"], name="security_events_type_idx"),
            models.Index(fields=["user", "-created_at"], name="security_events_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.email_attempted}".strip()
