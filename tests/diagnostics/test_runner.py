"""The one helper that runs diagnostic SQL: a failure is a message for its panel, and
nothing it does leaks into the request's transaction."""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from psycopg import sql

from diagnostics.runner import Query, run
from tests.diagnostics.support import NOBODY_ROLE, committed, connect, unique

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class One:
    value: int


def test_a_statement_over_its_time_limit_becomes_a_message():
    result = run("default", Query("slow", "SELECT 1 AS value FROM pg_sleep(2)", One, timeout_ms=50))
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("Gave up after 50 ms (statement_timeout)")
    assert result.rows == ()


def test_a_statement_waiting_for_a_lock_gives_up_quickly(settings):
    settings.DIAGNOSTICS_LOCK_TIMEOUT_MS = 100
    table = unique("diag_locked")
    t = sql.Identifier(table)
    with committed(
        [sql.SQL("CREATE TABLE {} (id int)").format(t)],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        holder = connect(autocommit=False)
        holder.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(t))
        try:
            query = Query("locked", sql.SQL("SELECT count(*)::int AS value FROM {}").format(t), One)
            result = run("default", query)
        finally:
            holder.rollback()
            holder.close()
    assert result.error is not None
    assert result.error.startswith("Gave up after waiting 100 ms for a lock (lock_timeout)")


def test_a_refused_statement_says_so_and_the_transaction_goes_on(add_alias, diag_roles):
    alias = add_alias("nobody", USER=NOBODY_ROLE, PASSWORD=diag_roles[NOBODY_ROLE])
    with transaction.atomic(using=alias):
        refused = run(
            alias, Query("users", 'SELECT count(*)::int AS value FROM "auth"."users"', One)
        )
        assert refused.error is not None
        assert refused.error.startswith("The database refused: permission denied for schema auth")
        assert refused.sqlstate == "42501"
        # The same transaction still works: the failure was confined to its savepoint.
        assert run(alias, Query("one", "SELECT 1 AS value", One)).rows == (One(1),)


def test_the_local_limits_end_with_each_statement():
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    with transaction.atomic():
        assert run("default", Query("one", "SELECT 1 AS value", One)).ok
        get_user_model().objects.count()  # the request's own queries keep working
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == before
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "0"


def test_rows_become_the_query_s_dataclass():
    result = run("default", Query("series", "SELECT g AS value FROM generate_series(1, 3) g", One))
    assert result.rows == (One(1), One(2), One(3))
    assert result.first() == One(1)


def test_a_column_the_row_type_does_not_know_is_a_programming_error():
    with pytest.raises(TypeError, match="not in row type"):
        run("default", Query("bad", "SELECT 1 AS value, 2 AS other", One))


def test_a_refusal_quotes_the_servers_own_words_as_data():
    """The server's error text (in the server's language) is quoted apart from the
    portal's sentence around it, escaped like everything else."""
    import psycopg
    from django.template import Context, Template

    from diagnostics.runner import explain_error

    refused = psycopg.errors.InsufficientPrivilege("permission denied for schema <core>")
    failure = explain_error(refused, statement_timeout=50, lock_timeout=50)
    assert failure.detail == "permission denied for schema <core>"
    assert failure.message.startswith("The database refused: permission denied")
    page = Template(
        "{% load diagnostics %}{{ message|server_words:detail }}|{{ plain|server_words:None }}"
    ).render(Context({"message": failure.message, "detail": failure.detail, "plain": "<b>"}))
    assert (
        'The database refused: <q class="diag-server" lang="en">'
        "permission denied for schema &lt;core&gt;</q>. See the Privileges page." in page
    )
    assert page.endswith("|&lt;b&gt;")
