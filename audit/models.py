"""The audit trail, in the ``audit`` schema.

Rows are evidence: the user reference is a plain column without a database foreign
key (``db_constraint=False``), so deleting a user neither cascades into nor updates
audit rows, and ``actor_email`` keeps who it was at the time.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from portal.db.fields import created_at, uuid_pk


class ChainedRow(models.Model):
    """The hash-chain columns, all set by the database's insert trigger (audit/chain.py).

    Whatever a client sends for them (or for ``created_at``) is overwritten.
    """

    chain_seq = models.BigIntegerField(
        null=True, unique=True, editable=False, verbose_name=_("chain sequence")
    )
    prev_hash = models.BinaryField(null=True, editable=False, verbose_name=_("previous hash"))
    row_hash = models.BinaryField(null=True, editable=False, verbose_name=_("row hash"))

    class Meta:
        abstract = True


class ActivityLog(ChainedRow):
    id = uuid_pk(verbose_name=_("ID"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the (user, created_at) index serves it
        related_name="+",
        verbose_name=_("user"),
    )
    actor_email = models.CharField(
        max_length=254, blank=True, default="", verbose_name=_("actor email")
    )
    action = models.CharField(max_length=50, verbose_name=_("action"))
    resource_type = models.CharField(
        max_length=100, blank=True, default="", verbose_name=_("resource type")
    )
    resource_id = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("resource id")
    )
    object_repr = models.CharField(
        max_length=500, blank=True, default="", verbose_name=_("object repr")
    )
    details = models.JSONField(default=dict, blank=True, db_default={}, verbose_name=_("details"))
    ip_address = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("ip address"))
    user_agent = models.TextField(blank=True, default="", verbose_name=_("user agent"))
    request_id = models.CharField(
        max_length=100, blank=True, default="", verbose_name=_("request id")
    )
    # The trace id the request came with (Cloud Run / traceparent): chosen upstream,
    # so kept apart from request_id, which the portal generates.
    client_trace_id = models.CharField(
        max_length=32, blank=True, default="", db_default="", verbose_name=_("client trace id")
    )
    created_at = created_at()

    class Meta:
        db_table = 'audit"."activity_logs'
        verbose_name = _("activity log entry")
        verbose_name_plural = _("activity log")
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
        LOGIN_SUCCESS = "login_success", _("Login success")
        LOGIN_FAILURE = "login_failure", _("Login failure")
        LOGOUT = "logout", _("Logout")
        LOCKOUT = "lockout", _("Lockout")
        PASSWORD_CHANGE = "password_change", _("Password change")
        PERMISSION_CHANGE = "permission_change", _("Permission change")
        GROUP_CHANGE = "group_change", _("Group change")

    id = uuid_pk(verbose_name=_("ID"))
    event_type = models.CharField(max_length=50, choices=EventType, verbose_name=_("event type"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the (user, created_at) index serves it
        related_name="+",
        verbose_name=_("user"),
    )
    email_attempted = models.CharField(
        max_length=254, blank=True, default="", verbose_name=_("email attempted")
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("ip address"))
    user_agent = models.TextField(blank=True, default="", verbose_name=_("user agent"))
    details = models.JSONField(default=dict, blank=True, db_default={}, verbose_name=_("details"))
    client_trace_id = models.CharField(
        max_length=32, blank=True, default="", db_default="", verbose_name=_("client trace id")
    )
    created_at = created_at()

    class Meta:
        db_table = 'audit"."security_events'
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="security_events_created_idx"),
            models.Index(fields=["event_type", "-created_at"], name="security_events_type_idx"),
            models.Index(fields=["user", "-created_at"], name="security_events_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.email_attempted}".strip()


class ArchiveBoundary(models.Model):
    """One archive run of one audit table: the chain prefix it exported and removed.

    Written only by ``manage.py archive_audit`` as the tables' owner, in the same
    transaction as the DELETE of exactly those rows (``audit/archive.py``); the
    database checks it (``audit/migrations/0006_archive_boundaries.py``): who inserts
    it, that it continues the previous boundary, and that its hashes are the rows'.
    The verifier starts each chain from the latest boundary. Append-only, like the
    audit tables.
    """

    id = uuid_pk(verbose_name=_("ID"))
    table_name = models.CharField(max_length=63, verbose_name=_("table"))
    first_seq = models.BigIntegerField(verbose_name=_("first chain sequence"))
    last_seq = models.BigIntegerField(verbose_name=_("last chain sequence"))
    row_count = models.BigIntegerField(verbose_name=_("rows"))
    # the hash the first archived row chains from, and the last archived row's hash
    prev_hash = models.BinaryField(verbose_name=_("previous hash"))
    last_hash = models.BinaryField(verbose_name=_("last hash"))
    last_created_at = models.DateTimeField(verbose_name=_("last row created at"))
    before = models.DateTimeField(verbose_name=_("archived rows older than"))
    object_name = models.CharField(max_length=1024, verbose_name=_("object"))
    object_sha256 = models.CharField(max_length=64, verbose_name=_("object SHA-256"))
    object_bytes = models.BigIntegerField(verbose_name=_("object size"))
    # set by the database's insert trigger, whatever the client sends
    archived_by = models.CharField(max_length=63, default="", verbose_name=_("database role"))
    archived_at = models.DateTimeField(db_default=Now(), verbose_name=_("archived at"))
    # the inserting transaction (pg_current_xact_id()): the DELETE guard allows removing
    # rows only in the transaction that recorded their boundary
    archived_in = models.BigIntegerField(default=0, verbose_name=_("transaction id"))

    class Meta:
        db_table = 'audit"."archive_boundaries'
        verbose_name = _("archive boundary")
        verbose_name_plural = _("archive boundaries")
        ordering = ["table_name", "last_seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["table_name", "first_seq"], name="archive_boundaries_first_uniq"
            ),
            models.UniqueConstraint(
                fields=["table_name", "last_seq"], name="archive_boundaries_last_uniq"
            ),
            models.UniqueConstraint(
                fields=["table_name", "archived_in"], name="archive_boundaries_xact_uniq"
            ),
            models.CheckConstraint(
                condition=models.Q(table_name__in=["activity_logs", "security_events"]),
                name="archive_boundaries_table_check",
            ),
            models.CheckConstraint(
                condition=models.Q(first_seq__gte=1, last_seq__gte=models.F("first_seq")),
                name="archive_boundaries_range_check",
            ),
        ]

    def __str__(self) -> str:
        return f"audit.{self.table_name} #{self.first_seq}-#{self.last_seq}"
