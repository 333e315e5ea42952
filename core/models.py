"""Projects, automations and the agent gateway's tables, in the ``core`` schema.

The gateway writes ``codex_sessions``, ``execution_history``, ``sandbox_executions``
and ``mcp_cache`` directly: their names and columns are a contract. The portal's own
triggers on ``codex_sessions`` (the session rollup, :class:`SessionStatusHour`) run in
the gateway's transactions and need no privilege of its role.
"""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.search import search_vector, time_bucket, token_bucket
from portal.db.fields import created_at, updated_at, uuid_pk


class Project(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ARCHIVED = "archived", _("Archived")

    id = uuid_pk(verbose_name=_("ID"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    description = models.TextField(blank=True, default="", verbose_name=_("description"))
    company = models.ForeignKey(
        "accounts.Company",
        on_delete=models.CASCADE,
        related_name="projects",
        verbose_name=_("company"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_projects",
        verbose_name=_("owner"),
    )
    status = models.CharField(
        max_length=20,
        choices=Status,
        default=Status.ACTIVE,
        db_default="active",
        verbose_name=_("status"),
    )
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = 'core"."projects'
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Automation(models.Model):
    class Type(models.TextChoices):
        N8N = "n8n", "n8n"
        MAUTIC = "mautic", "Mautic"
        TYPEBOT = "typebot", "Typebot"

    id = uuid_pk(verbose_name=_("ID"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    type = models.CharField(max_length=20, choices=Type, verbose_name=_("type"))
    config = models.JSONField(default=dict, blank=True, verbose_name=_("config"))
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="automations", verbose_name=_("project")
    )
    is_active = models.BooleanField(default=True, db_default=True, verbose_name=_("is active"))
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = 'core"."automations'
        verbose_name = _("automation")
        verbose_name_plural = _("automations")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(type__in=["n8n", "mautic", "typebot"]),
                name="automations_type_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name


#: The statuses the gateway writes, with their labels. Not a database constraint (the
#: gateway owns the column); the admin offers only these, so a typo cannot make a new one.
SESSION_STATUSES = [
    ("active", _("Active")),
    ("completed", _("Completed")),
    ("failed", _("Failed")),
    ("timeout", _("Timed out")),
    ("cancelled", _("Cancelled")),
]


class CodexSession(models.Model):
    """One agent session of the gateway. ``user_id`` is the caller's id, not a FK."""

    session_id = uuid_pk(verbose_name=_("session id"))
    user_id = models.CharField(max_length=255, verbose_name=_("user id"))
    model = models.CharField(max_length=100, verbose_name=_("model"))
    status = models.CharField(max_length=50, verbose_name=_("status"))
    metadata = models.JSONField(default=dict, blank=True, db_default={}, verbose_name=_("metadata"))
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = 'core"."codex_sessions'
        verbose_name_plural = _("agent sessions")
        verbose_name = _("agent session")
        ordering = ["-created_at"]
        indexes = [
            # INCLUDE status: the dashboard counts a week of sessions by status from the
            # index alone (an index-only scan), without visiting the table's rows.
            models.Index(
                fields=["-created_at"], include=["status"], name="codex_sessions_created_cov_idx"
            ),
            models.Index(fields=["status", "-created_at"], name="codex_sessions_status_idx"),
            models.Index(fields=["model", "-created_at"], name="codex_sessions_model_idx"),
            # Pattern operators: serves both "user_id = x" and the search box's prefix
            # match (LIKE 'x%') in any collation.
            models.Index(
                fields=["user_id"],
                opclasses=["varchar_pattern_ops"],
                name="codex_sessions_user_prefix_idx",
            ),
        ]

    def __str__(self) -> str:
        return str(self.session_id)


class ExecutionHistoryManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        # The search document is about a kilobyte a row and only PostgreSQL reads it.
        return super().get_queryset().defer("search_document")


class ExecutionHistory(models.Model):
    """One prompt/response round of a session."""

    id = models.BigAutoField(primary_key=True, verbose_name=_("ID"))
    session = models.ForeignKey(
        CodexSession,
        on_delete=models.CASCADE,
        related_name="executions",
        db_index=False,
        verbose_name=_("session"),
    )
    prompt = models.TextField(verbose_name=_("prompt"))
    response = models.TextField(null=True, blank=True, verbose_name=_("response"))
    tokens_used = models.IntegerField(null=True, blank=True, verbose_name=_("tokens used"))
    execution_time_ms = models.IntegerField(
        null=True, blank=True, verbose_name=_("execution time ms")
    )
    created_at = created_at()
    #: The full-text document of prompt and response, computed by PostgreSQL on write
    #: (core/search.py). Stored, so that checking a row against a search is a cheap
    #: comparison instead of re-parsing kilobytes of text: that is what lets the admin
    #: walk the newest rows for common words. Never loaded unless asked for (manager).
    search_document = models.GeneratedField(
        expression=search_vector(),
        output_field=SearchVectorField(),
        db_persist=True,
        verbose_name=_("search document"),
    )

    objects = ExecutionHistoryManager()

    class Meta:
        db_table = 'core"."execution_history'
        verbose_name = _("execution")
        verbose_name_plural = _("execution history")
        ordering = ["-created_at", "-id"]
        indexes = [
            # INCLUDE the two figures the dashboard adds up for a time window, and the
            # sessions list for a session: sums come from the index alone (index-only
            # scans), never from the wide rows with prompts and responses.
            models.Index(
                fields=["-created_at", "-id"],
                include=["tokens_used", "execution_time_ms"],
                name="exec_history_created_cov_idx",
            ),
            # Serves both "executions of this session" and its newest-first ordering.
            models.Index(
                fields=["session", "-created_at"],
                include=["tokens_used", "execution_time_ms"],
                name="exec_history_session_cov_idx",
            ),
            # The admin list and search; expressions in core/search.py.
            GinIndex(fields=["search_document"], name="exec_history_document_idx"),
            models.Index(
                token_bucket(),
                models.F("created_at").desc(),
                models.F("id").desc(),
                name="exec_history_tokens_idx",
            ),
            models.Index(
                time_bucket(),
                models.F("created_at").desc(),
                models.F("id").desc(),
                # The dashboard's "slowest executions" sorts a bucket by time here.
                include=["execution_time_ms"],
                name="exec_history_time_idx",
            ),
        ]

    def __str__(self) -> str:
        return gettext("execution %(id)s") % {"id": self.pk}


class SandboxExecution(models.Model):
    id = models.BigAutoField(primary_key=True, verbose_name=_("ID"))
    session = models.ForeignKey(
        CodexSession,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sandbox_executions",
        verbose_name=_("session"),
    )
    sql_query = models.TextField(verbose_name=_("sql query"))
    result = models.JSONField(null=True, blank=True, verbose_name=_("result"))
    error = models.TextField(null=True, blank=True, verbose_name=_("error"))
    executed_at = models.DateTimeField(
        auto_now_add=True, db_default=Now(), verbose_name=_("executed at")
    )

    class Meta:
        db_table = 'core"."sandbox_executions'
        verbose_name_plural = _("sandbox runs")
        verbose_name = _("sandbox run")
        ordering = ["-executed_at", "-id"]
        indexes = [
            models.Index(fields=["-executed_at", "-id"], name="sandbox_executed_idx"),
            # Failed runs are few: the dashboard and the "failed" filter read them here.
            models.Index(
                models.F("executed_at").desc(),
                models.F("id").desc(),
                condition=models.Q(error__isnull=False),
                name="sandbox_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return gettext("sandbox run %(id)s") % {"id": self.pk}


class McpCache(models.Model):
    """The gateway's cache of MCP tool-call results."""

    id = models.BigAutoField(primary_key=True, verbose_name=_("ID"))
    tool_name = models.CharField(max_length=255, verbose_name=_("tool name"))
    arguments = models.JSONField(default=dict, blank=True, verbose_name=_("arguments"))
    result = models.JSONField(null=True, blank=True, verbose_name=_("result"))
    cached_at = models.DateTimeField(
        auto_now_add=True, db_default=Now(), verbose_name=_("cached at")
    )
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))

    class Meta:
        db_table = 'core"."mcp_cache'
        verbose_name = _("tool cache entry")
        verbose_name_plural = _("tool cache")
        ordering = ["-cached_at", "-id"]
        indexes = [
            models.Index(fields=["expires_at"], name="mcp_cache_expires_idx"),
            models.Index(fields=["tool_name", "-cached_at"], name="mcp_cache_tool_idx"),
            models.Index(fields=["-cached_at", "-id"], name="mcp_cache_cached_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} #{self.pk}"


class ExecutionHour(models.Model):
    """Executions, tokens and agent time of one whole UTC hour: the dashboard's rollup.

    Derived from execution history by the portal (core/selectors.py) the first time an
    hour is needed after it is over, so the dashboard adds up 24 small rows instead of a
    day of executions (hundreds of thousands at ten million rows). Safe to delete: a
    missing hour is computed again. The gateway never writes here.
    """

    hour = models.DateTimeField(
        primary_key=True, help_text=_("Start of the hour (UTC)."), verbose_name=_("hour")
    )
    executions = models.BigIntegerField(verbose_name=_("executions"))
    tokens = models.BigIntegerField(verbose_name=_("tokens"))
    time_ms = models.BigIntegerField(verbose_name=_("agent time (ms)"))
    computed_at = models.DateTimeField(
        db_default=Now(), editable=False, verbose_name=_("computed at")
    )

    class Meta:
        db_table = 'core"."execution_hours'
        verbose_name_plural = _("hourly execution totals")
        verbose_name = _("hourly execution total")
        ordering = ["-hour"]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} UTC"


#: The statuses that end a session without its result: the dashboard's failures.
FAILED_STATUSES = ("failed", "timeout")


class SessionStatusHour(models.Model):
    """Sessions per status and UTC hour of their start: the dashboard's session figures.

    Kept by PostgreSQL, not by the portal: row triggers on core.codex_sessions (migration
    0008) append a change of +1 to :class:`SessionStatusChange` for a session's status
    and hour when it is inserted or takes that status or start time, and -1 when it
    leaves them or is deleted, in the same transaction as the change, whoever makes it
    (the gateway included). The dashboard folds the changes into these rows
    (core/selectors.py). So an hour's figure here plus its unfolded changes always
    equals a count of that hour's sessions with that status, and a week of sessions by
    status, or of failures per hour, is read from a few hundred small rows instead of
    counting a hundred thousand sessions.
    """

    pk = models.CompositePrimaryKey("hour", "status")
    hour = models.DateTimeField(help_text=_("Start of the hour (UTC)."), verbose_name=_("hour"))
    status = models.CharField(max_length=50, verbose_name=_("status"))
    sessions = models.BigIntegerField(verbose_name=_("sessions"))

    class Meta:
        db_table = 'core"."session_status_hours'
        verbose_name = _("hourly session count")
        verbose_name_plural = _("hourly session counts")
        ordering = ["-hour", "status"]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} UTC {self.status}"


class SessionStatusChange(models.Model):
    """One session entering (+1) or leaving (-1) a status and hour, not yet folded into
    :class:`SessionStatusHour`.

    Appended, never updated, so a writer of core.codex_sessions never waits for another
    one: two transactions changing sessions of the same hour and status would both wait
    on a shared counter row until the first commits (and could deadlock when each
    touches two of them); appending takes no row lock at all.
    """

    hour = models.DateTimeField(verbose_name=_("hour"))
    status = models.CharField(max_length=50, verbose_name=_("status"))
    change = models.SmallIntegerField(verbose_name=_("change"))

    class Meta:
        db_table = 'core"."session_status_changes'
        verbose_name = _("session count change")
        verbose_name_plural = _("session count changes")

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} UTC {self.status} {self.change:+d}"
