import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_admin_login_page_renders(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    assert b"Agent Gateway Portal" in response.content


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_registered_model_lists_for_a_superuser(admin_client, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert admin_client.get(url).status_code == 200
