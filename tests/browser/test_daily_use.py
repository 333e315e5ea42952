"""The admin as its daily users need it, in Chromium at 1400 px and 390 px wide, in the
light and the dark scheme: every list and the main detail pages fit without sideways
scrolling; one-sided date ranges; the failure at the top of a session; related links;
long content folded with a jump to the response; search by what the list shows."""

import datetime
import uuid

import pytest
from django.utils import timezone

from accounts.models import Company, OAuthAccount, User
from audit.models import ActivityLog
from core.models import (
    Automation,
    CodexSession,
    ExecutionHistory,
    McpCache,
    Project,
    SandboxExecution,
)

from .conftest import PASSWORD, SCREENSHOTS

WIDTHS = {"desktop": (1400, 900), "phone": (390, 844)}
SCHEMES = ["light", "dark"]
LONG_PROMPT = "Please review this migration plan. " * 2000  # about 70,000 characters


@pytest.fixture
def world(transactional_db, superuser):
    company = Company.objects.create(name="Acme Robotics Worldwide", domain="acme.example")
    other = Company.objects.create(name="Borealis Analytics", domain="borealis.example")
    user = User.objects.create_user(
        email="dana.ops@acme.example",
        password=PASSWORD,
        first_name="Dana",
        last_name="Okafor-Lindqvist",
        company=company,
        keycloak_id="kc-5a1f0c7e-88d1-4c1e-9d53-0c3b2f8e6a41",
        department="Platform engineering",
    )
    project = Project.objects.create(name="infra-terraform", company=company, owner=user)
    Project.objects.create(name="infra-terraform", company=other, owner=user)
    Automation.objects.create(name="Nightly drift report", type="n8n", project=project)
    OAuthAccount.objects.create(user=user, provider="google", provider_account_id="1098" * 5)
    failed = CodexSession.objects.create(
        session_id=uuid.uuid4(),
        user_id=user.keycloak_id,
        model="claude-sonnet-4.5",
        status="failed",
        metadata={
            "approval_policy": "on-request",
            "base_commit": "f" * 40,
            "branch": "feature/very-long-branch-name-for-the-quarterly-terraform-upgrade",
            "client": {"name": "codex-cli", "os": "linux", "version": "0.46.0"},
            "error": {"code": "upstream_5xx", "message": "Bad gateway from the model API"},
            "project_id": str(project.pk),
        },
    )
    for i in range(8):
        CodexSession.objects.create(
            session_id=uuid.uuid4(),
            user_id=f"usr_{uuid.uuid4().hex[:24]}",
            model="gpt-5-codex",
            status=["completed", "active", "timeout", "cancelled"][i % 4],
        )
    executions = [
        ExecutionHistory(
            session=failed,
            prompt=LONG_PROMPT if i == 0 else f"Step {i}: run terraform plan for the staging env",
            response=(
                'Traceback (most recent call last):\n  File "plan.py", line 3, in <module>\n'
                "KeyError: 'region'"
                if i == 1
                else '{"plan": {"add": 3, "change": 1, "destroy": 0}}'
            ),
            tokens_used=1200 + 900 * i,
            execution_time_ms=[640, 24_631, 4_000, 600_000][i % 4],
        )
        for i in range(5)
    ]
    ExecutionHistory.objects.bulk_create(executions)
    SandboxExecution.objects.create(
        session=failed,
        sql_query="select plan, count(*) as n from billing.subscriptions group by plan",
        result={"columns": ["plan", "n"], "rows": [["free", 1204], ["pro", 310]]},
    )
    SandboxExecution.objects.create(
        session=failed,
        sql_query="select * from core.projectz",
        error='relation "core.projectz" does not exist',
    )
    McpCache.objects.create(
        tool_name="web.fetch",
        arguments={"url": "https://example.com/a/very/long/path/" + "x" * 80},
        expires_at=timezone.now() - datetime.timedelta(hours=1),
    )
    ActivityLog.objects.create(
        user=user,
        actor_email=user.email,
        action="change",
        resource_type="core.project",
        resource_id=str(project.pk),
        object_repr="infra-terraform (a long representation of the changed object)",
        ip_address="2001:db8:85a3::8a2e:370:7334",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537",
    )
    return {"user": user, "company": company, "project": project, "session": failed}


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"daily-use-{name}.png"), full_page=True)


def _context(browser, live_server, superuser, width: str, scheme: str):
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", superuser.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return context, page


def _overflow(page) -> dict:
    """How far the page and the list's table stick out sideways (0: they fit)."""
    return page.evaluate(
        """() => {
          const doc = document.documentElement;
          const content = document.querySelector('#content-main');
          const results = document.querySelector('#changelist .results');
          return {
            page: doc.scrollWidth - doc.clientWidth,
            content: content ? content.scrollWidth - content.clientWidth : 0,
            results: results ? results.scrollWidth - results.clientWidth : 0,
          };
        }"""
    )


def _widest(page) -> list[str]:
    """The elements that stick out of the content box (to say what to fix)."""
    return page.evaluate(
        """() => {
          const box = document.querySelector('#content-main').getBoundingClientRect();
          return [...document.querySelectorAll('#content-main *')]
            .filter(e => e.getBoundingClientRect().right > box.right + 1)
            .slice(0, 5)
            .map(e => e.tagName + '#' + e.id + '.' + e.className);
        }"""
    )


def _pages(world) -> list[str]:
    s, u, c, p = world["session"], world["user"], world["company"], world["project"]
    execution = ExecutionHistory.objects.filter(session=s).order_by("id")[:1].get()
    run = SandboxExecution.objects.get(error__isnull=True)
    return [
        "/admin/",
        "/admin/core/codexsession/",
        "/admin/core/executionhistory/",
        "/admin/core/sandboxexecution/",
        "/admin/core/mcpcache/",
        "/admin/core/project/",
        "/admin/core/automation/",
        "/admin/core/executionhour/",
        "/admin/accounts/user/",
        "/admin/accounts/company/",
        "/admin/accounts/oauthaccount/",
        "/admin/audit/activitylog/",
        "/admin/audit/securityevent/",
        f"/admin/core/codexsession/{s.pk}/change/",
        f"/admin/core/executionhistory/{execution.pk}/change/",
        f"/admin/core/sandboxexecution/{run.pk}/change/",
        f"/admin/accounts/user/{u.pk}/change/",
        f"/admin/accounts/company/{c.pk}/change/",
        f"/admin/core/project/{p.pk}/change/",
    ]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_fits_without_sideways_scrolling(
    browser, live_server, superuser, world, width, scheme
):
    context, page = _context(browser, live_server, superuser, width, scheme)
    try:
        misfits = {}
        for path in _pages(world):
            page.goto(f"{live_server.url}{path}")
            assert page.evaluate("document.documentElement.dataset.theme || ''") in {"", "auto"}
            dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
            assert dark == (scheme == "dark")
            sticking_out = _overflow(page)
            # On a phone a list's table may scroll inside its own box; the page never.
            if width == "phone":
                sticking_out.pop("results")
            if any(v > 0 for v in sticking_out.values()):
                misfits[path] = {**sticking_out, "widest": _widest(page)}
                _shot(page, f"misfit-{width}-{scheme}-{path.strip('/').replace('/', '-')}")
            if "/change/" not in path and path != "/admin/":
                # The row's link (the column Django renders as a header cell) stays.
                rows = page.locator("#result_list tbody tr")
                if rows.count():
                    assert rows.first.locator("th").first.is_visible(), path
        page.goto(f"{live_server.url}/admin/core/codexsession/{world['session'].pk}/change/")
        _shot(page, f"session-{width}-{scheme}")
        page.goto(f"{live_server.url}/admin/core/codexsession/")
        _shot(page, f"sessions-{width}-{scheme}")
        assert misfits == {}
    finally:
        context.close()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_one_sided_date_range_from_the_form(
    browser, live_server, superuser, world, width, scheme
):
    context, page = _context(browser, live_server, superuser, width, scheme)
    try:
        page.goto(f"{live_server.url}/admin/core/codexsession/")
        since = (timezone.localdate() - datetime.timedelta(days=1)).isoformat()
        form = page.locator("form.portal-range").first
        form.locator("input[type=date]").first.fill(since)
        form.locator("button[type=submit]").click()
        page.wait_for_load_state()
        assert "created_at__gte=" + since in page.url
        assert "created_at__lt" not in page.url  # the empty Until box is left out
        assert "were not valid" not in page.content()
        assert page.locator("#result_list tbody tr").count() == 9
        _shot(page, f"one-sided-{width}-{scheme}")
    finally:
        context.close()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_session_story_and_its_links(browser, live_server, superuser, world, width, scheme):
    context, page = _context(browser, live_server, superuser, width, scheme)
    session = world["session"]
    try:
        page.goto(f"{live_server.url}/admin/core/codexsession/")
        page.fill("#searchbar", str(session.pk)[:8])
        page.press("#searchbar", "Enter")
        page.wait_for_load_state()
        assert page.locator("#result_list tbody tr").count() == 1
        page.locator("#result_list tbody tr").first.locator("a").first.click()
        page.wait_for_url(f"**/codexsession/{session.pk}/change/**")
        failure = page.locator(".portal-failure")
        assert failure.is_visible()
        assert "upstream_5xx" in failure.inner_text()
        # The reason is on the first screen, above the fields.
        assert failure.bounding_box()["y"] < page.viewport_size["height"]
        assert page.locator(".portal-timeline tbody tr").count() == 5
        timeline = page.locator(".portal-timeline").inner_text()
        assert "24.6 s" in timeline and "10.0 min" in timeline and "640 ms" in timeline
        _shot(page, f"story-{width}-{scheme}")
        page.locator(".portal-related a", has_text="Project infra-terraform").click()
        page.wait_for_url(f"**/core/project/{world['project'].pk}/change/**")
        page.locator(".portal-related a", has_text="Automations").click()
        page.wait_for_load_state()
        assert page.locator("#result_list tbody tr").count() == 1
        page.go_back()
        page.go_back()
        page.locator(".portal-related a", has_text="Sandbox runs").click()
        page.wait_for_load_state()
        assert page.locator("#result_list tbody tr").count() == 2
        page.go_back()
        page.locator(".portal-related a", has_text="User dana.ops@acme.example").click()
        page.wait_for_url(f"**/accounts/user/{world['user'].pk}/change/**")
        page.locator(".portal-related a", has_text="Agent sessions").click()
        page.wait_for_load_state()
        assert page.locator("#result_list tbody tr").count() == 1
    finally:
        context.close()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", list(WIDTHS))
def test_long_content_is_folded_and_readable(browser, live_server, superuser, world, width, scheme):
    context, page = _context(browser, live_server, superuser, width, scheme)
    session = world["session"]
    rows = list(ExecutionHistory.objects.filter(session=session).order_by("id"))
    try:
        page.goto(f"{live_server.url}/admin/core/executionhistory/{rows[0].pk}/change/")
        # 70,000 characters folded: the page stays a few screens long.
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 4 * page.viewport_size["height"], height
        page.locator(".portal-jump").click()
        assert page.url.endswith("#portal-response")
        assert page.locator("#portal-response").is_visible()
        page.locator(".portal-fold > summary").first.click()
        assert page.evaluate("document.documentElement.scrollHeight") > height
        page.locator("a[rel=next]").click()
        page.wait_for_url(f"**/executionhistory/{rows[1].pk}/change/")
        font = page.locator(".portal-traceback").first.evaluate(
            "e => getComputedStyle(e).fontFamily"
        )
        assert "mono" in font.lower() or "consolas" in font.lower()
        page.locator("a[rel=next]").click()
        page.wait_for_url(f"**/executionhistory/{rows[2].pk}/change/")
        assert '"destroy": 0' in page.locator("#portal-response .portal-json").inner_text()
        run = SandboxExecution.objects.get(error__isnull=True)
        page.goto(f"{live_server.url}/admin/core/sandboxexecution/{run.pk}/change/")
        assert page.locator(".portal-result tbody tr").count() == 2
        # (text_content: the admin's CSS shows table headers in capitals)
        assert page.locator(".portal-result thead th").all_text_contents() == ["plan", "n"]
        sql = page.locator(".portal-sql").text_content() or ""
        assert "group by plan" in " ".join(sql.split())  # as it ran, not re-cased
        _shot(page, f"sandbox-{width}-{scheme}")
    finally:
        context.close()
