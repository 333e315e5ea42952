"""Users are managed properly: hashed passwords, the password form, no hash on screen."""

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from accounts.models import Company, User

pytestmark = pytest.mark.django_db

PASSWORD = "correct-Horse-battery-9"


def test_adding_a_user_stores_a_hashed_password_that_logs_in(admin_client):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "New.Person@Example.com",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.com")
    assert user.password != PASSWORD and user.password.count("$") >= 1
    assert (
        authenticate(
            RequestFactory().post("/admin/login/"),
            username="new.person@example.com",
            password=PASSWORD,
        )
        == user
    )
    assert response["Location"] == f"/admin/accounts/user/{user.pk}/change/"


def test_a_duplicate_email_in_another_case_is_refused(admin_client):
    User.objects.create_user(email="taken@example.com", password=PASSWORD)
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "TAKEN@example.com",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_mismatched_passwords_are_a_form_error(admin_client):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "x@example.com",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD + "!",
        },
    )
    assert response.status_code == 200 and b"errornote" in response.content
    assert not User.objects.filter(email="x@example.com").exists()


def test_the_change_page_never_shows_the_password_hash(admin_client):
    user = User.objects.create_user(email="someone@example.com", password=PASSWORD)
    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    _algorithm, *parts = user.password.split("$")
    for part in parts:
        if len(part) >= 6:
            assert part[:6] not in page
    assert "Change password" in page
    assert f"/admin/accounts/user/{user.pk}/password/" in page


def test_editing_a_user_keeps_the_password(admin_client):
    company = Company.objects.create(name="Acme")
    user = User.objects.create_user(email="edit@example.com", password=PASSWORD)
    response = admin_client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {
            "email": "edit@example.com",
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": str(company.pk),
            "department": "",
            "subscription_plan": "pro",
            "keycloak_id": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    user.refresh_from_db()
    assert (user.first_name, user.company, user.subscription_plan) == ("Grace", company, "pro")
    assert user.check_password(PASSWORD)


def test_the_change_password_form_sets_a_new_hashed_password(admin_client):
    user = User.objects.create_user(email="pw@example.com", password=PASSWORD)
    new = "another-Secret-phrase-7"
    response = admin_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": new, "password2": new, "usable_password": "true"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new) and not user.check_password(PASSWORD)


def test_company_autocomplete_serves_the_user_form(admin_client):
    Company.objects.create(name="Globex Corporation")
    response = admin_client.get(
        "/admin/autocomplete/",
        {"term": "glob", "app_label": "accounts", "model_name": "user", "field_name": "company"},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Globex Corporation"]
