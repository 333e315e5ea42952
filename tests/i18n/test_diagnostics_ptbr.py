"""Every diagnostics page, the statement page and the confirmation pages in Portuguese.

A superuser whose browser asks for pt-BR (Accept-Language, or the language cookie the
header switch sets) walks every page of the registry while real sessions give the pages
something to show: a long pg_sleep, a transaction holding a row lock with a second
session queued behind it, an idle connection. What each page shows of the portal (its
text outside the data: values in table cells, SQL, identifiers; the same parts the
browser walk in tests/browser/test_ptbr.py leaves out) must hold no word of the portal's
English vocabulary. The same walk in English must find English words, so the detector
is known to see the pages' text.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from psycopg import sql

from diagnostics.pages import PAGES
from tests.browser.test_ptbr import english_left
from tests.diagnostics.support import (
    Background,
    committed,
    connect,
    running,
    unique,
    wait_for,
)

pytestmark = pytest.mark.django_db

PT = {"Accept-Language": "pt-BR,pt;q=0.9"}

# What a page shows of the data rather than of the portal, as in the browser walk's DATA
# selector: tags, classes, and (ancestor, tag) pairs ("#content > h2" is an object's name).
# The charts' SVG is data too: axis numbers and dates, and the bars' labels are statements.
_DATA_TAGS = frozenset({"select", "pre", "code", "td", "script", "style", "title", "svg"})
_DATA_CLASSES = frozenset({"readonly", "diag-sql", "breadcrumbs", "diag-server"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _PortalText(HTMLParser):
    """The text of ``#content`` outside the data, plus the labels people read in
    attributes (placeholders, aria-labels, submit buttons)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str, frozenset[str], bool, bool]] = []
        self.parts: list[str] = []

    def _is_data(self, tag: str, ident: str, classes: frozenset[str]) -> bool:
        if tag in _DATA_TAGS or classes & _DATA_CLASSES:
            return True
        parent = self.stack[-1] if self.stack else None
        if tag == "h2" and parent is not None and parent[1] == "content":
            return True
        ancestors = [(t, i, c) for t, i, c, _, _ in self.stack]
        if tag == "strong" and any("diag-target" in c for _, _, c in ancestors):
            return True
        if tag == "li" and any(i == "changelist-filter" for _, i, _ in ancestors):
            return True
        return tag == "tbody" and any(i == "result_list" for _, i, _ in ancestors)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        ident = values.get("id", "")
        classes = frozenset(values.get("class", "").split())
        parent_data = self.stack[-1][3] if self.stack else False
        inside = (self.stack[-1][4] if self.stack else False) or ident == "content"
        data = parent_data or self._is_data(tag, ident, classes)
        if inside and not data:
            for name in ("placeholder", "aria-label"):
                if values.get(name):
                    self.parts.append(values[name])
            if tag == "input" and values.get("type") == "submit" and values.get("value"):
                self.parts.append(values["value"])
        if tag not in _VOID:
            self.stack.append((tag, ident, classes, data, inside))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][4] and not self.stack[-1][3]:
            self.parts.append(data)


def portal_text(page: str) -> str:
    parser = _PortalText()
    parser.feed(page)
    parser.close()
    return " ".join(parser.parts)


def page_url(slug: str) -> str:
    return reverse("admin:diagnostics" if slug == "overview" else f"admin:diagnostics_{slug}")


@pytest.fixture
def superuser_client(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser(
        email="dba@exemplo.com.br", password="nao-usada-aqui-123"
    )
    client = Client()
    client.force_login(user)
    return client


@contextlib.contextmanager
def _row_lock_queue() -> Iterator[int]:
    """A transaction holding a row lock (idle in it) and a session queued behind it;
    yields the holder's pid."""
    table = unique("diag_ptbr")
    t = sql.Identifier(table)
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v int)").format(t),
            sql.SQL("INSERT INTO {} VALUES (1, 0)").format(t),
            sql.SQL("GRANT ALL ON {} TO PUBLIC").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        holder = connect(autocommit=False, application_name="ptbr-holder")
        try:
            holder.execute(sql.SQL("UPDATE {} SET v = 1 WHERE id = 1").format(t))
            update = sql.SQL("UPDATE {} SET v = 2 WHERE id = 1").format(t)
            with running(update, application_name="ptbr-waiter"):
                yield holder.info.backend_pid
        finally:
            holder.close()


@pytest.fixture
def busy_server() -> Iterator[Background]:
    """A long query, a row-lock queue and an idle connection; yields the long query."""
    with (
        running("SELECT pg_sleep(120)", application_name="ptbr-sleeper") as sleeper,
        _row_lock_queue(),
        connect(application_name="ptbr-idle") as idle,
    ):
        idle.execute("SELECT 1")
        with connect() as watcher:
            wait_for(
                lambda: watcher.execute(
                    "SELECT 1 FROM pg_stat_activity"
                    " WHERE pid = %s AND now() - query_start > interval '1 second'",
                    (sleeper.pid,),
                ).fetchone(),
                what="the long query to pass one second",
            )
        yield sleeper


@contextlib.contextmanager
def _recorded_statement() -> Iterator[int]:
    """A statement of this database that pg_stat_statements has recorded, on a table
    that exists while the pages plan it; yields its queryid."""
    table = unique("diag_ptbr_stmt")
    t = sql.Identifier(table)
    with committed(
        [
            sql.SQL("CREATE TABLE {} (id int, account int)").format(t),
            sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(t),
        ],
        [sql.SQL("DROP TABLE IF EXISTS {}").format(t)],
    ):
        with connect() as conn:
            for n in range(3):
                conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE account = %s").format(t), (n,))
            row = conn.execute(
                "SELECT queryid FROM pg_stat_statements WHERE query LIKE %s"
                " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " ORDER BY calls DESC LIMIT 1",
                (f'%FROM "{table}" WHERE account = $1%',),
            ).fetchone()
        assert row is not None, "pg_stat_statements recorded nothing"
        yield int(row[0])


def _walk(client: Client, sleeper: Background, headers: dict[str, str]) -> dict[str, str]:
    """Every diagnostics page, the statement page (with EXPLAIN ANALYZE) and the
    confirmation pages, by name, as HTML."""
    pages: dict[str, str] = {}

    def keep(name: str, response) -> None:
        assert response.status_code == 200, (name, response.status_code)
        pages[name] = html.unescape(response.content.decode())

    for slug, _title in PAGES:
        keep(slug, client.get(page_url(slug), headers=headers))
    with _recorded_statement() as queryid:
        keep(
            "statement",
            client.get(
                reverse("admin:diagnostics_statement"), {"queryid": queryid}, headers=headers
            ),
        )
        keep(
            "explain analyze",
            client.post(
                reverse("admin:diagnostics_explain_analyze"), {"queryid": queryid}, headers=headers
            ),
        )
    session = {"pid": sleeper.pid, "backend_start": sleeper.backend_start.isoformat()}
    signal = reverse("admin:diagnostics_signal")
    keep("confirm cancel", client.post(signal, {**session, "kind": "cancel"}, headers=headers))
    keep(
        "confirm terminate", client.post(signal, {**session, "kind": "terminate"}, headers=headers)
    )
    long_running = reverse("admin:diagnostics_signal_long")
    for kind in ("cancel", "terminate"):
        keep(
            f"confirm {kind} long-running",
            client.post(long_running, {"kind": kind, "seconds": "1"}, headers=headers),
        )
    keep(
        "confirm terminate idle",
        client.post(reverse("admin:diagnostics_terminate_idle"), {"minutes": "0"}, headers=headers),
    )
    keep("confirm reset", client.post(reverse("admin:diagnostics_reset_queries"), headers=headers))
    return pages


def test_every_diagnostics_page_is_in_portuguese(superuser_client, busy_server):
    pages = _walk(superuser_client, busy_server, PT)
    problems = {name: english_left(portal_text(page)) for name, page in pages.items()}
    assert {name: words for name, words in problems.items() if words} == {}
    for page in pages.values():
        assert 'lang="pt-br"' in page
    # A few translations, one per kind of source: the registry, a template, a check built
    # in Python, a plural, a chart built in Python, a confirmation.
    assert "Visão geral" in pages["overview"]
    assert "Cancelar ou encerrar consultas longas" in pages["activity"]
    assert "bloqueador raiz" in pages["blocking"]
    assert "Tabelas: linhas mortas, autovacuum, cache" in pages["maintenance"]
    assert "Chamadas e linhas por snapshot" in pages["statement"]
    assert "Sugestões de índice" in pages["statement"]
    assert "Sim, encerrar as sessões selecionadas" in pages["confirm terminate long-running"]
    assert "com uma consulta rodando há mais de 1 s" in pages["confirm cancel long-running"]
    assert "Zerar o pg_stat_statements do banco" in pages["confirm reset"]
    # The overview's level of each check is translated too (never "warning"/"info").
    assert 'class="diag-level">warning<' not in pages["overview"]
    assert 'class="diag-level">info<' not in pages["overview"]


def test_each_page_seen_by_a_lesser_role_is_in_portuguese_too(superuser_client, diag_target):
    """As a pg_monitor role and as a bare role the pages say what is hidden and how to
    grant it: those notes and fixes are Portuguese too."""
    with running("SELECT pg_sleep(60)", application_name="ptbr-sleeper"):
        problems = {}
        for slug, _title in PAGES:
            response = superuser_client.get(page_url(slug), {"db": diag_target.alias}, headers=PT)
            assert response.status_code == 200, slug
            left = english_left(portal_text(html.unescape(response.content.decode())))
            if left:
                problems[slug] = left
    assert problems == {}


def test_the_language_cookie_gives_the_same_pages_in_portuguese(superuser_client, busy_server):
    superuser_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pt-br"
    for slug in ("activity", "blocking", "settings", "privileges"):
        page = html.unescape(superuser_client.get(page_url(slug)).content.decode())
        assert 'lang="pt-br"' in page, slug
        assert english_left(portal_text(page)) == [], slug


def test_in_english_the_same_walk_finds_the_english_text(superuser_client, busy_server):
    pages = _walk(superuser_client, busy_server, {})
    for name, page in pages.items():
        assert 'lang="en"' in page, name
        assert english_left(portal_text(page)), name
    assert "Cancel or terminate long-running queries" in pages["activity"]
    assert "root blocker" in pages["blocking"]
    assert "Yes, terminate the selected sessions" in pages["confirm terminate long-running"]


def test_the_portal_text_leaves_out_the_data_and_keeps_the_labels():
    page = (
        '<div id="content"><h1>Sessions</h1><h2>object name</h2><div><h2>Heading</h2></div>'
        "<table><tr><th>Query</th><td>idle session</td></tr></table>"
        '<pre>SELECT query</pre><p>Role <code>table</code> <span class="diag-sql">rows</span>'
        '<input type="submit" value="Show"><input name="q" placeholder="text in the query">'
        "<br>after</p></div><p>outside</p>"
    )
    text = portal_text(page)
    assert text.split() == [
        "Sessions",
        "Heading",
        "Query",
        "Role",
        "Show",
        "text",
        "in",
        "the",
        "query",
        "after",
    ]
