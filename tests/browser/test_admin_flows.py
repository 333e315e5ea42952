"""The admin's main flows in a real browser (Debian's Chromium through Playwright):
log in, dashboard, a session and its executions, search, cache purge, users, log out."""

import datetime
import uuid

import pytest
from django.utils import timezone

from accounts.models import Company, User
from core.models import CodexSession, ExecutionHistory, McpCache, SandboxExecution

from .conftest import log_in

PROMPT = (
    "The nightly build fails:\n\n```python\nTraceback (most recent call last):\n"
    "  File \"build.py\", line 3\nKeyError: 'region'\n```\n\nWhat is missing?"
)


@pytest.fixture
def agent_data(transactional_db):
    now = timezone.now()
    sessions = []
    for i, status in enumerate(["completed", "failed", "running", "completed"]):
        sessions.append(
            CodexSession.objects.create(
                session_id=uuid.uuid4(),
                user_id=f"user-{i}",
                model="gpt-5" if i % 2 else "codex-mini",
                status=status,
                metadata={"repository": "acme/infra", "branch": f"fix-{i}", "ci": {"run": 4812}},
            )
        )
    main = sessions[0]
    ExecutionHistory.objects.bulk_create(
        [
            ExecutionHistory(
                session=main,
                prompt=PROMPT if i == 0 else f"Step {i}: run the migration checks again",
                response="Set `REGION` in the environment:\n\n```sh\nexport REGION=eu-west1\n```",
                tokens_used=1200 + i * 37,
                execution_time_ms=900 + i * 1500,
            )
            for i in range(6)
        ]
        + [
            ExecutionHistory(
                session=sessions[1],
                prompt="Summarise the terraform plan",
                response="3 changes",
                tokens_used=5400,
                execution_time_ms=185_000,
            )
        ]
    )
    SandboxExecution.objects.create(
        session=main,
        sql_query="select count(*) from core.projects where status = 'active'",
        result=[[12]],
    )
    SandboxExecution.objects.create(
        session=sessions[1],
        sql_query="select * from core.projectz",
        error='relation "core.projectz" does not exist',
    )
    McpCache.objects.bulk_create(
        [
            McpCache(
                tool_name="web.fetch",
                arguments={"url": f"https://example.com/{i}"},
                expires_at=now - datetime.timedelta(hours=i + 1),
            )
            for i in range(4)
        ]
        + [McpCache(tool_name="docs.lookup", expires_at=now + datetime.timedelta(days=1))]
    )
    Company.objects.create(name="Acme Robotics", domain="acme.example")
    return main


def test_dashboard_after_login(page, live_server, superuser, agent_data, screenshot):
    log_in(page, live_server, superuser.email)
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator(".portal-card").count() == 5
    assert (
        page.locator(".portal-card", has_text="Sessions today")
        .locator(".portal-card-value")
        .inner_text()
        == "4"
    )
    assert page.get_by_text("Summarise the terraform plan").is_visible()
    screenshot("dashboard")
    page.locator(".portal-card", has_text="Failed sandbox runs").click()
    page.wait_for_url("**/sandboxexecution/?outcome=failed**")
    assert page.get_by_text("select * from core.projectz").is_visible()
    screenshot("failed-sandbox-runs")


def test_open_a_session_and_its_executions(admin_page, live_server, agent_data, screenshot):
    page = admin_page
    page.locator("#content-main tr.model-codexsession th a").click()
    page.wait_for_url("**/core/codexsession/")
    screenshot("sessions")
    page.get_by_role("link", name=str(agent_data.pk)[:8] + "…").click()
    page.wait_for_url(f"**/core/codexsession/{agent_data.pk}/change/")
    assert "acme/infra" in page.locator(".portal-json").inner_text()
    assert page.locator(".portal-timeline tbody tr").count() == 6
    screenshot("session")
    page.get_by_role("link", name="All executions of this session").click()
    page.wait_for_url(f"**/core/executionhistory/?session={agent_data.pk}")
    assert page.locator("#result_list tbody tr").count() == 6
    screenshot("session-executions")
    page.locator("#result_list tbody tr").last.locator("th a").click()
    assert page.locator(".portal-codeblock").first.inner_text().find("KeyError") >= 0
    screenshot("execution")


def test_search_execution_history(admin_page, live_server, agent_data, screenshot):
    page = admin_page
    page.goto(f"{live_server.url}/admin/core/executionhistory/")
    page.fill("#searchbar", "terraform")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/executionhistory/?q=terraform")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Summarise the terraform plan" in rows.first.inner_text()
    screenshot("search")
    page.fill("#searchbar", '"migration checks"')
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    assert page.locator("#result_list tbody tr").count() == 5
    screenshot("phrase-search")


def test_purge_expired_cache_entries(admin_page, live_server, agent_data, screenshot):
    page = admin_page
    page.goto(f"{live_server.url}/admin/core/mcpcache/?expired=yes")
    assert page.locator("#result_list tbody tr").count() == 4
    page.get_by_role("link", name="Purge expired entries…").click()
    page.wait_for_url("**/mcpcache/purge-expired/")
    assert "4 tool cache entries have expired" in page.locator(".portal-confirm").inner_text()
    screenshot("confirm")
    page.get_by_role("button", name="Yes, purge expired entries").click()
    page.wait_for_url("**/core/mcpcache/")
    assert "Purged 4 expired tool cache entries." in page.locator(".messagelist").inner_text()
    assert McpCache.objects.count() == 1
    screenshot("purged")


def test_create_and_edit_a_user(admin_page, live_server, agent_data, screenshot):
    page = admin_page
    page.goto(f"{live_server.url}/admin/accounts/user/add/")
    page.fill("input[name=email]", "new.engineer@example.com")
    page.fill("input[name=password1]", "a-Long-passphrase-42")
    page.fill("input[name=password2]", "a-Long-passphrase-42")
    screenshot("add-user")
    page.click("input[name=_save]")
    page.wait_for_url("**/accounts/user/*/change/")
    user = User.objects.get(email="new.engineer@example.com")
    assert user.check_password("a-Long-passphrase-42")
    assert user.password not in page.content()
    page.fill("input[name=first_name]", "Margaret")
    page.fill("input[name=last_name]", "Hamilton")
    # The company is chosen through the autocomplete widget.
    page.locator(".field-company .select2-selection").click()
    page.locator(".select2-search__field").fill("acme")
    page.locator(".select2-results__option", has_text="Acme Robotics").click()
    screenshot("edit-user")
    page.click("input[name=_save]")
    page.wait_for_url("**/accounts/user/")
    assert "was changed successfully" in page.locator(".messagelist").inner_text()
    user.refresh_from_db()
    assert user.company is not None
    assert (user.first_name, user.company.name) == ("Margaret", "Acme Robotics")
    screenshot("users")


def test_unknown_session_is_a_clear_not_found_page(admin_page, live_server, screenshot):
    page = admin_page
    response = page.goto(f"{live_server.url}/admin/core/codexsession/not-a-session/change/")
    assert response.status == 404
    assert "There is no agent session" in page.content()
    screenshot("not-found")


def test_log_out(admin_page, live_server, screenshot):
    page = admin_page
    page.click("#logout-form button")
    assert "Logged out" in page.content()
    screenshot("logged-out")
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
