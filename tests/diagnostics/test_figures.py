"""Each figure a page shows, against the catalog's own answer on a prepared database:
the same number through the same formatting layer, or the test fails. (The labels are
compared, not raw numbers: the pages show labels, and the formatting layer has its
own property tests.)"""

import html
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from psycopg import sql

from diagnostics.formatting import bytes_label, count_label, number_label
from tests.db import roles
from tests.diagnostics.support import committed, connect, unique, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client_of(client, django_user_model):
    user = django_user_model.objects.create_user(
        email="figures@example.com", password="not-used-here-123", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename="view_diagnostics"))
    client.force_login(user)

    def get(slug: str, **params) -> str:
        name = "admin:diagnostics" if slug == "overview" else f"admin:diagnostics_{slug}"
        response = client.get(reverse(name), {"db": "default", **params})
        assert response.status_code == 200
        return html.unescape(response.content.decode())

    return get


def cells(text: str, anchor: str) -> list[str]:
    """The text of each cell of the <tr> containing ``anchor``."""
    at = text.index(anchor)
    row = text[text.rindex("<tr", 0, at) : text.index("</tr>", at)]
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


@pytest.fixture
def prepared():
    """A schema with a 60,000-row table, 12,345 of its rows deleted (dead), an unused
    index, and a sequence used far along."""
    schema = unique("figs")
    s = sql.Identifier(schema)
    app = sql.Identifier(roles.role_name(roles.APPLICATION))
    with committed(
        [
            sql.SQL("CREATE SCHEMA {}").format(s),
            sql.SQL(
                "CREATE TABLE {}.big (id int, v int, note text) WITH (autovacuum_enabled = off)"
            ).format(s),
            sql.SQL(
                "INSERT INTO {}.big"
                " SELECT g, g % 1000, md5(g::text) FROM generate_series(1, 60000) g"
            ).format(s),
            sql.SQL("CREATE INDEX big_v_idx ON {}.big (v)").format(s),
            sql.SQL("ANALYZE {}.big").format(s),
            sql.SQL("DELETE FROM {}.big WHERE id <= 12345").format(s),
            sql.SQL("CREATE SEQUENCE {}.far MAXVALUE 5000000").format(s),
            sql.SQL("SELECT setval({}, 4321987)").format(sql.Literal(f"{schema}.far")),
            # The page shows the sequences its role may read, as the deployment grants the
            # application role its own (the suite connects as it: tests/db/roles.py).
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, app),
            sql.SQL("GRANT SELECT ON SEQUENCE {}.far TO {}").format(s, app),
        ],
        [sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(s)],
    ):
        with connect() as conn:
            wait_for(
                lambda: (
                    conn.execute(
                        "SELECT n_dead_tup FROM pg_stat_user_tables"
                        " WHERE schemaname = %s AND relname = 'big'",
                        (schema,),
                    ).fetchone()
                    == (12345,)
                ),
                what="the dead rows to reach the statistics",
            )
        yield schema


def catalog(query: str, *params):
    with connect() as conn:
        return conn.execute(query, params).fetchone()


def test_maintenance_dead_live_and_sequence_figures_equal_the_catalogs(client_of, prepared):
    text = client_of("maintenance", q=f"{prepared}.big")
    live, dead = catalog(
        "SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND relname = 'big'",
        prepared,
    )
    row = cells(text, f'id="table-{prepared}-big"')
    assert row[1] == count_label(live)  # 47.7 k
    assert row[2].startswith(count_label(dead))  # 12.3 k (20 %)
    assert row[3].startswith("never: autovacuum_enabled = off")
    last_value, max_value = catalog(
        "SELECT last_value, max_value FROM pg_sequences WHERE schemaname = %s"
        " AND sequencename = 'far'",
        prepared,
    )
    seq = cells(text, f'id="seq-{prepared}-far"')
    assert seq[2] == number_label(last_value) and seq[3] == number_label(max_value)
    assert seq[5] == f"{count_label(max_value - last_value)} left"


def test_space_figures_equal_pg_relation_sizes(client_of, prepared):
    text = client_of("space")
    table_bytes, index_bytes, total_bytes, reltuples = catalog(
        "SELECT pg_table_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid),"
        " c.reltuples FROM pg_class c WHERE c.oid = to_regclass(%s)",
        f"{prepared}.big",
    )
    row = cells(text, f"{prepared}.big</td>")
    assert row[1] == count_label(reltuples)
    assert row[2] == bytes_label(table_bytes)
    assert row[4] == bytes_label(index_bytes)
    assert row[5] == bytes_label(total_bytes)


def test_indexes_figures_equal_pg_relation_size(client_of, prepared):
    text = client_of("indexes")
    (size,) = catalog("SELECT pg_relation_size(to_regclass(%s))", f"{prepared}.big_v_idx")
    row = cells(text, f'id="unused-{prepared}-big_v_idx"')
    assert row[2] == bytes_label(size)


def test_overview_figures_equal_the_catalogs(client_of, prepared):
    text = client_of("overview")
    (size,) = catalog("SELECT pg_database_size(current_database())")
    assert f'<p class="diag-big">{bytes_label(size)}</p>' in text
    (max_connections,) = catalog("SELECT current_setting('max_connections')::int")
    (clients,) = catalog(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
    )
    shown = re.search(r'<p class="diag-big">(\d+) / (\d+)</p>', text)
    assert shown is not None
    # The checking connection is one more than the page saw.
    assert int(shown.group(1)) in (clients - 1, clients)
    assert int(shown.group(2)) == max_connections
