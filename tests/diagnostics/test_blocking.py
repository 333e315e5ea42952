"""Blocking names the relation of every lock, row locks included: a session waiting for
another transaction's row lock ("ShareLock on transactionid") is shown waiting for a
row of that table. Activity shows the same wait in its "blocked by" column."""

import html

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from psycopg import sql

from tests.diagnostics.support import committed, connect, running, unique, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def diag_client(client, django_user_model):
    user = django_user_model.objects.create_user(
        email="locks@example.com", password="not-used-here-123", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename="view_diagnostics"))
    client.force_login(user)
    return client


def row_of(text: str, anchor: str) -> str:
    at = text.index(anchor)
    return text[text.rindex("<tr", 0, at) : text.index("</tr>", at)]


def test_a_row_lock_wait_names_the_table_and_the_blocker(diag_client, diag_target):
    table = unique("diag_rowlock")
    t = sql.Identifier(table)
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v int)").format(t),
            sql.SQL("INSERT INTO {} VALUES (1, 0), (2, 0)").format(t),
            sql.SQL("GRANT ALL ON {} TO PUBLIC").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        holder = connect(autocommit=False, application_name="row-holder")
        holder.execute(sql.SQL("UPDATE {} SET v = 1 WHERE id = 1").format(t))
        holder_pid = holder.info.backend_pid
        try:
            update = sql.SQL("UPDATE {} SET v = 2 WHERE id = 1").format(t)
            with running(update, application_name="row-waiter") as waiter:
                with connect() as watcher:
                    mode, locktype = wait_for(
                        lambda: watcher.execute(
                            "SELECT mode, locktype FROM pg_locks WHERE pid = %s AND NOT granted",
                            (waiter.pid,),
                        ).fetchone(),
                        what="the row lock wait",
                    )
                assert (mode, locktype) == ("ShareLock", "transactionid")
                text = html.unescape(
                    diag_client.get(
                        reverse("admin:diagnostics_blocking"), {"db": diag_target.alias}
                    ).content.decode()
                )
                row = row_of(text, f'id="pid-{waiter.pid}"')
                assert f"a row of <strong>{table}</strong>" in row, row
                root = row_of(text, f'id="pid-{holder_pid}"')
                assert f"RowExclusiveLock on {table}" in root
                activity_text = html.unescape(
                    diag_client.get(
                        reverse("admin:diagnostics_activity"), {"db": diag_target.alias}
                    ).content.decode()
                )
                waiting = row_of(activity_text, f'id="pid-{waiter.pid}"')
                blocked_by = waiting[waiting.index('class="diag-blocked-by"') :]
                assert f'href="#pid-{holder_pid}"' in blocked_by
        finally:
            holder.rollback()
            holder.close()


def test_activity_auto_refresh_is_a_meta_refresh_and_rejects_other_intervals(diag_client):
    url = reverse("admin:diagnostics_activity")
    text = diag_client.get(url, {"refresh": "10"}).content.decode()
    assert '<meta http-equiv="refresh" content="10">' in text
    assert "<script>" not in text  # the content security policy forbids inline scripts
    odd = diag_client.get(url, {"refresh": "1"})
    assert odd.status_code == 200
    body = html.unescape(odd.content.decode())
    assert 'http-equiv="refresh"' not in body
    assert "Refresh: choose one of the offered intervals" in body
