"""Usage analytics, in the ``analytics`` schema (readable by Metabase)."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.db.fields import uuid_pk


class UserSession(models.Model):
    id = uuid_pk(verbose_name=_("ID"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="usage_sessions",
        verbose_name=_("user"),
    )
    session_start = models.DateTimeField(
        default=timezone.now, db_default=Now(), verbose_name=_("session start")
    )
    session_end = models.DateTimeField(null=True, blank=True, verbose_name=_("session end"))
    ip_address = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("ip address"))
    user_agent = models.TextField(blank=True, default="", verbose_name=_("user agent"))
    actions_count = models.IntegerField(default=0, db_default=0, verbose_name=_("actions count"))

    class Meta:
        db_table = 'analytics"."user_sessions'
        verbose_name_plural = _("user sessions")
        verbose_name = _("user session")
        ordering = ["-session_start"]
        indexes = [models.Index(fields=["-session_start"], name="user_sessions_start_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.session_start:%Y-%m-%d %H:%M}"


class SystemMetric(models.Model):
    id = uuid_pk(verbose_name=_("ID"))
    metric_name = models.CharField(max_length=100, verbose_name=_("metric name"))
    metric_value = models.DecimalField(
        max_digits=30, decimal_places=6, verbose_name=_("metric value")
    )
    tags = models.JSONField(default=dict, blank=True, db_default={}, verbose_name=_("tags"))
    recorded_at = models.DateTimeField(
        default=timezone.now, db_default=Now(), verbose_name=_("recorded at")
    )

    class Meta:
        db_table = 'analytics"."system_metrics'
        verbose_name = _("system metric")
        verbose_name_plural = _("system metrics")
        ordering = ["-recorded_at"]
        indexes = [
            models.Index(fields=["-recorded_at"], name="system_metrics_recorded_idx"),
            models.Index(fields=["metric_name", "-recorded_at"], name="system_metrics_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_name}={self.metric_value}"
