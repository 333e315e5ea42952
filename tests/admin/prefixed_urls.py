"""A URLconf whose URLs depend on the language (``i18n_patterns``), for the url tag's test."""

from django.conf.urls.i18n import i18n_patterns
from django.http import HttpResponse
from django.urls import path

urlpatterns = i18n_patterns(path("page/", lambda request: HttpResponse(), name="page"))
