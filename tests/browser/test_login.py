from .conftest import log_in


def test_superuser_logs_in_and_out(page, live_server, superuser, screenshot):
    page.goto(f"{live_server.url}/admin/")
    screenshot("login")
    log_in(page, live_server, superuser.email)
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#site-name").inner_text() == "Agent Gateway Portal"
    screenshot("dashboard")
    page.click("#logout-form button")
    assert "Logged out" in page.content()


def test_wrong_password_shows_an_error(page, live_server, superuser, screenshot):
    log_in(page, live_server, superuser.email, "not-the-password")
    assert page.locator(".errornote").is_visible()
    screenshot("error")
