"""The benchmarks' URL configuration serves the whole portal: a page that links to a
URL the bench leaves out (the language switch, health) fails there with NoReverseMatch,
and `make bench` runs outside `make test`."""

from __future__ import annotations

from django.urls import get_resolver, reverse

from portal import urls as portal_urls


def _names(urlconf: str) -> set[str]:
    return {name for name in get_resolver(urlconf).reverse_dict if isinstance(name, str)}


def test_the_bench_serves_every_named_url_of_the_portal_and_the_baseline():
    assert _names(portal_urls.__name__) <= _names("tests.bench.urls")
    assert reverse("set_language", urlconf="tests.bench.urls") == "/i18n/setlang/"
    assert reverse("baseline:index", urlconf="tests.bench.urls") == "/baseline/"
