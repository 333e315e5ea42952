"""Helpers for the audit, roles and hardening tests: role users and real logins."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.forms import MultiWidget
from django.test import Client
from django.urls import reverse

from audit.models import ActivityLog, SecurityEvent

PASSWORD = "correct-Horse-battery-9"


def make_user(email: str, role: str | None = None, **extra):
    User = get_user_model()
    extra.setdefault("is_staff", True)
    user = User.objects.create_user(email=email, password=PASSWORD, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def login(email: str, password: str = PASSWORD, client: Client | None = None, **headers):
    """Log in through the admin's login form (so axes and the signals run)."""
    client = client or Client()
    response = client.post(
        reverse("admin:login"),
        {"username": email, "password": password, "next": "/admin/"},
        **headers,
    )
    return client, response


def activity(**filters) -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(**filters).order_by("created_at", "id"))


def events(**filters) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(**filters).order_by("created_at", "id"))


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def form_data(response) -> dict:
    """POST data that resubmits the admin form (and inline formsets) of a rendered page."""
    data: dict = {}
    context = response.context
    forms = [context["adminform"].form]
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        forms.append(formset.management_form)
        forms.extend(formset.forms)
    for form in forms:
        for name, field in form.fields.items():
            if field.disabled:
                continue
            value = form[name].value()
            key = form.add_prefix(name)
            widget = getattr(field.widget, "widget", field.widget)  # related-field wrapper
            if isinstance(widget, MultiWidget):
                parts = value if isinstance(value, list) else widget.decompress(value)
                for i, part in enumerate(parts):
                    data[f"{key}_{i}"] = "" if part is None else str(part)
            elif isinstance(value, bool) or getattr(widget, "input_type", None) == "checkbox":
                if value:
                    data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            elif value is not None:
                data[key] = str(value)
    return data
