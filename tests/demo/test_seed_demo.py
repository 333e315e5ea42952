"""The seed_demo command against real PostgreSQL: it fills and links every table, a second
run changes nothing, --scale reaches exact row counts, and bad input changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.contrib.postgres.search import SearchQuery
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts.models import User
from audit.models import ArchiveBoundary
from core.models import (
    CodexSession,
    ExecutionHistory,
    ExecutionHour,
    McpCache,
    Project,
    SandboxExecution,
    SessionStatusChange,
)
from demo.plan import build_plan

APPS = ["accounts", "core", "analytics", "diagnostics", "audit"]


def _tables() -> list:
    # include_auto_created: the users' group and permission links are tables too;
    # unmanaged models (a permissions holder) have none.
    # core.execution_hours is derived data the dashboard fills itself, not seeded;
    # core.session_status_changes is emptied by the fold that ends every seed_demo;
    # audit.archive_boundaries is written only by archive_audit (the demo keeps every
    # audit row: the retention default is forever).
    return [
        model
        for label in APPS
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
        if model._meta.managed
        and not model._meta.proxy
        and model not in (ExecutionHour, SessionStatusChange, ArchiveBoundary)
    ]


def _counts() -> dict[str, int]:
    return {model._meta.db_table: model.objects.count() for model in _tables()}


def _seed(*args: str, **options) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_it_fills_every_table_with_linked_rows():
    output = _seed()

    empty = [table for table, count in _counts().items() if count == 0]
    assert empty == []
    assert "created" in output

    # Every execution belongs to a session and comes after the session started.
    assert not ExecutionHistory.objects.filter(created_at__lt=F("session__created_at")).exists()
    assert not ExecutionHistory.objects.filter(created_at__gt=timezone.now()).exists()
    per_session = CodexSession.objects.annotate(n=Count("executions")).values_list("n", flat=True)
    assert min(per_session) >= 3 and max(per_session) <= 25

    # Projects are owned by people of their own company.
    assert not Project.objects.exclude(owner__company=F("company")).exists()

    # The tool cache has expired, live and never-expiring entries.
    now = timezone.now()
    assert McpCache.objects.filter(expires_at__lt=now).exists()
    assert McpCache.objects.filter(expires_at__gt=now).exists()
    assert McpCache.objects.filter(expires_at__isnull=True).exists()

    # Sandbox runs either failed (error text, no result) or returned rows, never both.
    failed = SandboxExecution.objects.filter(error__isnull=False)
    assert failed.exists() and not failed.filter(result__isnull=False).exists()
    assert failed.filter(error__startswith="ERROR:").count() == failed.count()
    assert SandboxExecution.objects.filter(error__isnull=True, result__has_key="rows").exists()
    assert not SandboxExecution.objects.filter(session__isnull=True).exists()

    # Sessions name their caller the way the gateway does: email, IdP id or opaque id,
    # and most of them resolve to a portal user.
    users = User.objects.all()
    known = {u.email for u in users} | {u.keycloak_id for u in users if u.keycloak_id}
    known |= {f"usr_{u.pk.hex[:24]}" for u in users}
    callers = list(CodexSession.objects.values_list("user_id", flat=True))
    assert sum(c in known for c in callers) / len(callers) > 0.9

    # Only a handful of users can log in with a password, and they are staff.
    with_password = [u for u in users if u.has_usable_password()]
    assert 0 < len(with_password) <= 5
    assert all(u.is_staff for u in with_password)
    assert users.filter(is_active=False).exists()


@pytest.mark.django_db
def test_a_second_run_creates_nothing():
    _seed()
    before = _counts()

    output = _seed()

    assert _counts() == before
    table_lines = [line for line in output.splitlines() if line.startswith("  ")]
    assert len(table_lines) >= len(_tables())
    assert all(line.rstrip().endswith("already seeded") for line in table_lines)
    assert "password" not in output


@pytest.mark.django_db
def test_scale_tops_execution_history_up_to_exactly_n():
    output = _seed("--scale", "20000")

    assert ExecutionHistory.objects.count() == 20000
    assert SandboxExecution.objects.count() >= 20000 // 50
    assert McpCache.objects.count() >= 20000 // 100
    # Bulk rows stay consistent with their sessions, and are not all the same text.
    assert not ExecutionHistory.objects.filter(created_at__lt=F("session__created_at")).exists()
    assert not ExecutionHistory.objects.filter(created_at__gt=timezone.now()).exists()
    assert ExecutionHistory.objects.values("prompt").distinct().count() > 1000
    assert ExecutionHistory.objects.filter(response__contains="```").count() > 10000
    assert not ExecutionHistory.objects.filter(
        Q(prompt__contains="{func}") | Q(response__contains="%1$s")
    ).exists()
    assert "core.execution_history" in output and "(now 20,000)" in output

    before = _counts()
    again = _seed("--scale", "20000")

    assert _counts() == before
    assert "already at 20,000 rows" in again


@pytest.mark.django_db
def test_scale_rows_spread_over_the_bulk_sessions():
    _seed(scale=5000, sessions=100)

    bulk = CodexSession.objects.exclude(metadata__has_key="base_commit")
    assert bulk.count() == 100
    assert ExecutionHistory.objects.filter(session__in=bulk).count() == 5000 - (
        ExecutionHistory.objects.exclude(session__in=bulk).count()
    )
    counts = [s.executions.count() for s in bulk]
    assert min(counts) < max(counts)  # hashed, not round-robin


@pytest.mark.django_db
def test_a_bulk_load_leaves_the_session_rollup_folded_and_equal_to_a_count(monkeypatch):
    """The bulk sessions appended a change each; the load folds them itself (in
    batches, here of 37), so the first dashboard view finds none waiting, and the
    folded hours equal the table's sessions per hour and status counted here."""
    import collections
    import datetime

    from core import selectors
    from core.models import SessionStatusHour

    monkeypatch.setattr(selectors, "FOLD_BATCH", 37)
    _seed(scale=3000, sessions=300)

    assert not SessionStatusChange.objects.exists()
    expected = collections.Counter(
        (c.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0), s)
        for c, s in CodexSession.objects.values_list("created_at", "status")
    )
    folded = {
        (h.astimezone(datetime.UTC), s): n
        for h, s, n in SessionStatusHour.objects.values_list("hour", "status", "sessions")
        if n
    }
    assert folded == dict(expected)


# Committed for real: the parallel streams are separate connections, which would not see
# a test transaction's rows.
@pytest.mark.django_db(transaction=True)
def test_parallel_streams_reach_exactly_n_with_searchable_documents():
    output = _seed("--scale", "12000", "--batch-size", "1000", "--jobs", "3")

    assert ExecutionHistory.objects.count() == 12000
    assert "(now 12,000)" in output
    assert ExecutionHistory.objects.values("prompt").distinct().count() > 1000
    # The stored full-text document is filled by PostgreSQL for every bulk row.
    assert not ExecutionHistory.objects.filter(search_document__isnull=True).exists()
    found = ExecutionHistory.objects.filter(search_document=SearchQuery("migration"))
    assert found.count() > 100
    assert not found.exclude(Q(prompt__icontains="migrat") | Q(response__icontains="migrat"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--scale", "-5"],
        ["--scale=-5"],
        ["--scale", "abc"],
        ["--scale", "0"],
        ["--scale", "1.5"],
        ["--scale", "20000", "--sessions", "0"],
        ["--scale", "100", "--sessions", "1000"],
        ["--sessions", "10"],
        ["--scale", "20000", "--jobs", "0"],
        ["--scale", "20000", "--jobs", "99"],
    ],
)
def test_it_rejects_bad_numbers_and_changes_nothing(args):
    before = _counts()

    with pytest.raises(CommandError) as excinfo:
        _seed(*args)

    assert "\n" not in str(excinfo.value)
    assert _counts() == before


@pytest.mark.django_db
def test_it_rejects_bad_numbers_passed_as_python_values():
    with pytest.raises(CommandError, match="positive whole number"):
        _seed(scale=-5)
    assert ExecutionHistory.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_to_run_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="production"):
        _seed()

    assert CodexSession.objects.count() == 0


def test_the_plan_does_not_depend_on_the_clock():
    """A later run must plan the same rows (same keys, same counts) or it would add more."""
    from datetime import timedelta

    morning = timezone.now().replace(hour=7, minute=5)
    later = morning + timedelta(days=3, hours=9, minutes=41)

    first, second = build_plan(morning), build_plan(later)

    for name in ["companies", "users", "projects", "automations", "sessions"]:
        assert [o.pk for o in getattr(first, name)] == [o.pk for o in getattr(second, name)]
    for name in ["user_sessions", "metrics", "activity", "security"]:
        assert [o.pk for o in getattr(first, name)] == [o.pk for o in getattr(second, name)]
    assert len(first.executions) == len(second.executions)
    assert [(c.tool_name, c.arguments) for c in first.cache] == [
        (c.tool_name, c.arguments) for c in second.cache
    ]
    assert [(o.provider, o.provider_account_id) for o in first.oauth] == [
        (o.provider, o.provider_account_id) for o in second.oauth
    ]


@pytest.mark.django_db
def test_it_stops_when_a_demo_email_belongs_to_someone_else():
    email = build_plan().users[0].email
    User.objects.create_user(email=email)
    before = _counts()

    with pytest.raises(CommandError, match="already belong"):
        _seed()

    assert _counts() == before
