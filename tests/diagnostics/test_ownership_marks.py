"""Declared / made-by-hand marks on constraints and tables, and the Schema drift panel,
against the real catalog and ``manage.py schema_drift``'s own output."""

from __future__ import annotations

import contextlib
import html
import io
import re
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from psycopg import sql

from diagnostics import drift as drift_panel
from diagnostics import ownership
from tests.diagnostics.support import MONITOR_ROLE, connect

# schema_drift builds the declared catalog in scratch schemas (CREATE on the database)
# and the tests change tables by hand: the migrator's, by name (tests/db/roles.py).
pytestmark = [pytest.mark.django_db, pytest.mark.db_role("migrator")]


@pytest.fixture(autouse=True)
def fresh_declared_side() -> Iterator[None]:
    """Each test builds the declared side itself (a grant given here must not leave a
    built catalog behind for another test's role)."""
    drift_panel.forget()
    yield
    drift_panel.forget()


@pytest.fixture
def diag_client(client, django_user_model):
    user = django_user_model.objects.create_user(
        email="owner@example.com", password="not-used-here-123", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename="view_diagnostics"))
    client.force_login(user)
    return client


def execute(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def schema_drift_lines() -> list[str]:
    """What ``manage.py schema_drift`` prints (its last line when there is no drift)."""
    out = io.StringIO()
    with contextlib.suppress(SystemExit):  # exit status 1 when there is drift
        call_command("schema_drift", stdout=out)
    lines = out.getvalue().splitlines()
    return [] if lines == ["No drift: the database matches the migrations."] else lines


def page(client, slug: str, alias: str = "default", **params: str) -> str:
    response = client.get(reverse(f"admin:diagnostics_{slug}"), {"db": alias, **params})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def row(text: str, anchor: str) -> str:
    at = text.index(f'id="{anchor}"')
    return text[text.rindex("<tr", 0, at) : text.index("</tr>", at)]


def drift_section(text: str) -> str:
    start = text.index('id="schema-drift"')
    return text[start : text.index("</div>", start)]


def drift_rows(text: str) -> list[tuple[str, str]]:
    return re.findall(
        r'<tr><td class="diag-sql"><code>(.*?)</code></td><td>(.*?)</td></tr>',
        drift_section(text),
        re.S,
    )


def declared_foreign_key() -> tuple[str, str, str]:
    """A foreign key of schema core (table, name, definition), from the catalog."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE connamespace = 'core'::regnamespace AND contype = 'f'"
            " ORDER BY conname LIMIT 1"
        )
        found = cursor.fetchone()
    assert found is not None
    return found


def test_marks_and_drift_lines_equal_what_schema_drift_reports(diag_client):
    table, fk_name, fk_definition = declared_foreign_key()
    execute(
        "CREATE INDEX hand_projects_name_idx ON core.projects (name)",
        "DROP INDEX core.mcp_cache_tool_idx",
        "ALTER TABLE core.codex_sessions ALTER COLUMN metadata DROP DEFAULT",
        "ALTER TABLE core.mcp_cache ADD CONSTRAINT hand_check CHECK (true) NOT VALID",
        f'ALTER TABLE {table} DROP CONSTRAINT "{fk_name}"',
        f'ALTER TABLE {table} ADD CONSTRAINT "{fk_name}" {fk_definition} NOT VALID',
        "CREATE TABLE core.hand_table (id int, padding text)",
        # Large enough to be among the largest tables of core on the Space page.
        "INSERT INTO core.hand_table SELECT g, repeat('x', 400) FROM generate_series(1, 20000) g",
        "ANALYZE core.hand_table",
    )
    expected = schema_drift_lines()
    kinds = sorted(line.split(":", 1)[0] for line in expected)
    assert kinds == [
        "column default",
        "constraint not validated",
        "hand-made constraint",
        "hand-made index",
        "hand-made table",
        "missing index",
    ], expected

    indexes = page(diag_client, "indexes")
    shown = drift_rows(indexes)
    assert [line for line, _advice in shown] == expected
    advice = dict(shown)
    missing = next(line for line in expected if line.startswith("missing index"))
    assert "re-create it as the migration declares" in advice[missing]
    hand = next(line for line in expected if line.startswith("hand-made table"))
    assert "No migration declares it" in advice[hand]
    assert "was built at" in drift_section(indexes)

    # The NOT VALID panel: the re-added foreign key is the migration's, hand_check is not.
    owner = ownership.declared_constraint("default", "core", fk_name)
    assert owner is not None and owner.app_label == "core"
    declared_row = row(indexes, f"constraint-core-{fk_name}")
    assert f"declared by {owner.model} (migration core.{owner.migration})" in declared_row
    assert "made by hand" not in declared_row
    hand_row = row(indexes, "constraint-core-hand_check")
    assert "made by hand" in hand_row and "declared by" not in hand_row

    # Tables: the model that names core.projects (the independent answer: Django's app
    # registry) on the Space page and the Maintenance list; the hand-made one says so.
    project = next(
        m for m in apps.get_models() if m._meta.db_table.replace('"', "") == "core.projects"
    )
    projects_owner = ownership.declared_table("default", "core", "projects")
    assert projects_owner is not None and projects_owner.model == project._meta.label
    mark = f"declared by {project._meta.label} (migration core.{projects_owner.migration})"
    space = page(diag_client, "space")
    assert "made by hand" in row(space, "space-core-hand_table")
    assert mark in row(space, "space-core-projects")
    maintenance = page(diag_client, "maintenance", q="hand_table")
    assert "made by hand" in row(maintenance, "table-core-hand_table")
    maintenance = page(diag_client, "maintenance", q="projects")
    assert mark in row(maintenance, "table-core-projects")
    # Django's bookkeeping in public is neither declared nor "made by hand".
    public = row(
        page(diag_client, "maintenance", q="django_migrations"), "table-public-django_migrations"
    )
    assert "made by hand" not in public and "declared by" not in public


def test_a_database_matching_its_migrations_shows_no_drift(diag_client):
    assert schema_drift_lines() == []
    text = page(diag_client, "indexes")
    assert drift_rows(text) == []
    assert "No drift: the app schemas match what the migrations declare." in drift_section(text)


def test_the_panel_degrades_per_role(diag_client, diag_target):
    """A superuser sees the comparison; pg_monitor and a bare role cannot create the
    scratch schemas and get the message saying so, on a page that still renders."""
    text = page(diag_client, "indexes", alias=diag_target.alias)
    section = drift_section(text)
    if diag_target.kind == "superuser":
        assert "No drift: the app schemas match" in section
        assert "errornote" not in section
    else:
        assert f"Role <code>{diag_target.role}</code> cannot create the scratch schemas" in section
        assert "<code>manage.py schema_drift</code> as the migration role" in section
        assert "<table" not in section
    # The rest of the page is still there.
    assert "Unused indexes" in text and "Traceback" not in text


@pytest.mark.django_db(transaction=True)
def test_a_role_that_may_create_schemas_but_not_read_django_migrations(
    diag_client,
    diag_roles,
    add_alias,
):
    """With CREATE on the database but no SELECT on django_migrations, the comparison
    runs (the same lines as schema_drift) and the unapplied-migrations check is a note."""
    database = connection.settings_dict["NAME"]
    with connect() as admin:
        admin.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(MONITOR_ROLE)
            )
        )
    try:
        alias = add_alias("diag_creator", USER=MONITOR_ROLE, PASSWORD=diag_roles[MONITOR_ROLE])
        text = page(diag_client, "indexes", alias=alias)
        section = drift_section(text)
        assert "Unapplied migrations not checked" in section
        assert "permission denied for table django_migrations" in section
        assert [line for line, _ in drift_rows(text)] == schema_drift_lines()
        assert "cannot create the scratch schemas" not in section
    finally:
        with connect() as admin:
            admin.execute(
                sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
                    sql.Identifier(database), sql.Identifier(MONITOR_ROLE)
                )
            )


def test_unapplied_migrations_are_listed_in_migrates_order(diag_client):
    """Records removed from django_migrations (in this test's transaction): the panel
    lists them as the command does, in the order migrate would apply them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE id IN ("
            " (SELECT id FROM django_migrations WHERE app = 'core' ORDER BY name DESC LIMIT 2)"
            " UNION ALL"
            " (SELECT id FROM django_migrations WHERE app = 'accounts' ORDER BY name DESC LIMIT 1))"
            " RETURNING app, name"
        )
        removed = {f"{app}.{name}" for app, name in cursor.fetchall()}
    assert len(removed) == 3
    expected = schema_drift_lines()
    assert {line.removeprefix("unapplied migration: ") for line in expected} == removed
    shown = drift_rows(page(diag_client, "indexes"))
    assert [line for line, _ in shown] == expected
    assert all("manage.py migrate" in advice for _, advice in shown)
