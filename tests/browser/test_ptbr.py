"""The portal in a Brazilian browser: no English left, São Paulo times, Brazilian numbers.

Chromium runs with locale pt-BR (so it sends Accept-Language: pt-BR) and the
America/Sao_Paulo zone; the user's own time zone is São Paulo too. The English words
looked for are the portal's own vocabulary: every word of every English msgid in the
catalogs, less the words the Portuguese translations keep as they are (PostgreSQL,
status, tokens, SQL keywords...). Data shown on the pages (emails, prompts, SQL
text) is chosen so that it holds none of those words.
"""

import datetime
import re
import uuid
from pathlib import Path

import polib
import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from core.models import CodexSession, ExecutionHistory, McpCache, Project, SandboxExecution
from diagnostics.pages import PAGES
from portal import i18n_check
from tests.browser.conftest import PASSWORD, log_in

WORD = re.compile(r"[A-Za-zÀ-ÿ]{3,}")


def _vocabulary() -> frozenset[str]:
    english: set[str] = set()
    kept: set[str] = set()
    for path in Path(i18n_check.ROOT).glob("*/locale/pt_BR/LC_MESSAGES/django.po"):
        for entry in polib.pofile(str(path)):
            source = re.sub(r"<[^>]+>|%\(\w+\)s|\{\}|[\w.]*_[\w.]*", " ", entry.msgid)
            english |= {w.lower() for w in WORD.findall(source)}
            for text in [entry.msgstr, *entry.msgstr_plural.values()]:
                kept |= {w.lower() for w in WORD.findall(text)}
    allowed = {w.lower() for w in i18n_check.ALLOWED_WORDS}
    return frozenset(english - kept - allowed)


VOCABULARY = _vocabulary()


def english_left(text: str) -> list[str]:
    return sorted({w for w in WORD.findall(text) if w.lower() in VOCABULARY})


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "pt-BR", "timezone_id": "America/Sao_Paulo"}


@pytest.fixture
def brazilian(transactional_db, django_user_model):
    user = django_user_model.objects.create_superuser(email="dba@exemplo.com.br", password=PASSWORD)
    django_user_model.objects.filter(pk=user.pk).update(time_zone="America/Sao_Paulo")
    return user


@pytest.fixture
def rows(brazilian):
    from accounts.models import Company

    company = Company.objects.create(name="Acme Ltda", domain="acme.com.br")
    Project.objects.create(name="Projeto Um", company=company, owner=brazilian)
    session = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="u-42", model="gpt-5", status="ok"
    )
    moment = timezone.now() - datetime.timedelta(hours=1)
    ExecutionHistory.objects.create(
        session=session, prompt="corrigir o teste", tokens_used=12345, execution_time_ms=4321
    )
    SandboxExecution.objects.create(session=session, sql_query="SELECT 1", error="erro x")
    McpCache.objects.create(
        tool_name="busca", arguments={}, result={}, expires_at=moment - datetime.timedelta(days=1)
    )
    return session


#: What the page shows of the data rather than of the portal: values, SQL, identifiers.
DATA = (
    "select, .readonly, #result_list tbody, pre, code, .diag-sql, td, .diag-target strong, "
    "#changelist-filter li, #content > h2, .breadcrumbs, svg, "  # column values offered as
    ".diag-server"  # the server's own error text, quoted in its language
    # filters; an object's own name (its heading and the breadcrumbs' last step); a chart's
    # axis numbers and dates and its bars' labels (statements); its title is the figcaption
)
UI_TEXT = f"""() => {{
    const copy = document.querySelector("#container").cloneNode(true);
    copy.querySelectorAll("{DATA}").forEach((e) => e.remove());
    document.body.appendChild(copy);
    const text = copy.innerText;
    copy.remove();
    return text;
}}"""


def _admin_pages() -> list[str]:
    urls = ["/admin/", "/admin/preferences/"]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        first = model_admin.get_queryset(_request()).order_by().first()
        if first is not None:
            urls.append(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
            )
    return urls


def _diagnostics_pages() -> list[str]:
    return [
        reverse("admin:diagnostics") if slug == "overview" else reverse(f"admin:diagnostics_{slug}")
        for slug, _title in PAGES
    ]


def _request():
    from django.test import RequestFactory

    return RequestFactory().get("/")


def test_the_login_page_is_in_portuguese(page, live_server, transactional_db):
    page.goto(f"{live_server.url}/admin/login/")
    text = page.inner_text("body")
    assert "Senha" in text
    assert page.get_attribute("input[type=submit]", "value") == "Acessar"
    assert english_left(text) == []


def _walk(page, live_server, urls) -> tuple[dict[str, list[str]], bool]:
    log_in(page, live_server, "dba@exemplo.com.br")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.get_attribute("html", "lang") == "pt-br"
    problems = {}
    zone_seen = False
    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.status == 200, url
        text = page.inner_text("#container")
        ui_text = page.evaluate(UI_TEXT)
        left = english_left(ui_text)
        if left:
            problems[url] = left
        # Every time is shown in São Paulo, with its zone label (-03), and dd/mm/aaaa.
        for match in re.finditer(r"\b\d{2}/\d{2}/\d{4} \d{2}:\d{2}( -03\b)?", text):
            assert match.group(1), f"{url}: {match.group(0)} without its zone"
            zone_seen = True
        # The hourly rollup names its hours in UTC, saying so; any other ISO time the
        # portal shows is a miss (SQL texts on the diagnostics pages are data: their
        # timestamps are the statements' own).
        assert not re.search(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?!:?\d* UTC)", ui_text), url
    return problems, zone_seen


def _report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{url}: {' '.join(words)}" for url, words in problems.items())


def test_every_admin_page_is_in_portuguese_with_sao_paulo_times(page, live_server, rows):
    problems, zone_seen = _walk(page, live_server, _admin_pages())
    assert problems == {}, _report(problems)
    assert zone_seen


def test_every_diagnostics_page_is_in_portuguese(page, live_server, rows):
    problems, _zone_seen = _walk(page, live_server, _diagnostics_pages())
    assert problems == {}, _report(problems)


def test_numbers_use_brazilian_separators(page, live_server, rows):
    log_in(page, live_server, "dba@exemplo.com.br")
    page.wait_for_url(f"{live_server.url}/admin/")
    text = page.inner_text("#content")
    assert "12.345" in text  # the tokens of the last 24 hours
    assert "12,345" not in text
