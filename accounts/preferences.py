"""The signed-in user's own preferences page: the time zone every time is shown in."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from accounts.timezones import time_zone_choices

if TYPE_CHECKING:
    from accounts.models import User


class PreferencesForm(forms.Form):
    time_zone = forms.TypedChoiceField(
        label=_("Time zone"),
        choices=time_zone_choices,
        help_text=_("Every date and time in the portal is shown in this zone."),
    )


def preferences_urls(site: AdminSite) -> list[URLPattern]:
    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest) -> HttpResponse:
        user = cast("User", request.user)  # admin_view: a signed-in staff user
        form = PreferencesForm(
            request.POST if request.method == "POST" else None,
            initial={"time_zone": getattr(user, "time_zone", "")},
        )
        if request.method == "POST" and form.is_valid():
            user.time_zone = form.cleaned_data["time_zone"]
            user.save(update_fields=["time_zone"])
            messages.success(request, gettext("Your preferences were saved."))
            return HttpResponseRedirect(reverse("admin:preferences", current_app=site.name))
        context = {
            **site.each_context(request),
            "title": _("Preferences"),
            "form": form,
        }
        return TemplateResponse(request, "admin/portal/preferences.html", context)

    return [path("preferences/", site.admin_view(view), name="preferences")]
