"""No Content-Security-Policy violation on any admin page, in a real browser.

The policy forbids inline scripts (no 'unsafe-inline'), so a single inline script or
handler anywhere in the admin would be blocked and reported. Chromium reports each
violation as a console error and a ``securitypolicyviolation`` event; both are
collected while the pages load and their JavaScript runs (select-all, the
permission pickers, date shortcuts).
"""

from django.contrib import admin
from django.urls import reverse

from accounts.models import Company
from audit.services import record_activity
from tests.diagnostics.support import PAGE_SLUGS

from .conftest import PASSWORD, log_in

COLLECT = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def watch(page) -> list[str]:
    problems: list[str] = []
    page.add_init_script(COLLECT)
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    return problems


def visit(page, url: str, problems: list[str]) -> None:
    response = page.goto(url)
    assert response.status < 400, url
    assert (
        "'unsafe-inline'"
        not in response.headers["content-security-policy"]
        .split("script-src", 1)[1]
        .split(";", 1)[0]
    )
    page.wait_for_load_state("load")
    problems.extend(page.evaluate("window.__cspViolations"))


DIAGNOSTICS_SLUGS = [slug for slug in PAGE_SLUGS if slug != "overview"]


def test_admin_pages_run_without_csp_violations(page, live_server, superuser, screenshot):
    problems = watch(page)
    base = live_server.url
    visit(page, f"{base}{reverse('admin:login')}", problems)
    log_in(page, live_server, superuser.email, PASSWORD)
    page.wait_for_url(f"{base}/admin/")
    company = Company.objects.create(name="Acme")
    record_activity(
        actor=superuser,
        action="change",
        resource_type="accounts.company",
        resource_id=company.pk,
        object_repr="Acme",
        details={"changes": {"name": {"old": "Acme Ltd", "new": "Acme"}}},
    )

    urls = [reverse("admin:index"), reverse("admin:password_change")]
    for model, model_admin in admin.site._registry.items():
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls.append(reverse(f"{prefix}_changelist"))
        if model_admin.has_add_permission(type("R", (), {"user": superuser})()):
            urls.append(reverse(f"{prefix}_add"))
    urls += [
        reverse("admin:accounts_user_change", args=[superuser.pk]),
        reverse("admin:accounts_company_change", args=[company.pk]),
        reverse("admin:accounts_company_history", args=[company.pk]),
        # The diagnostics pages (their charts are inline SVG: no script, no style attribute).
        reverse("admin:diagnostics"),
        *(reverse(f"admin:diagnostics_{slug}") for slug in DIAGNOSTICS_SLUGS),
    ]
    for url in urls:
        visit(page, base + url, problems)

    # Exercise the admin's JavaScript: select-all on a list, the permission picker,
    # the audit entry page with its diff.
    visit(page, base + reverse("admin:accounts_company_changelist"), problems)
    page.click("#action-toggle")
    visit(page, base + reverse("admin:auth_group_add"), problems)
    page.click("#id_permissions_add_all")
    screenshot("group-add")
    visit(page, base + reverse("admin:audit_activitylog_changelist"), problems)
    page.click("#result_list tbody tr th a, #result_list tbody tr td a >> nth=0")
    page.wait_for_load_state("load")
    problems.extend(page.evaluate("window.__cspViolations"))
    assert page.locator("table.audit-diff").is_visible()
    screenshot("audit-entry")
    assert problems == []

    # Control: the same watch does catch an inline script when there is one.
    page.evaluate(
        "document.body.appendChild(Object.assign(document.createElement('script'),"
        " {textContent: 'window.__ran = true'}))"
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.__ran") is None
