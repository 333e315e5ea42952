"""The portal's ``{% url %}`` (reversals kept per process) against Django's own tag.

The independent answer is Django's ``url`` tag, rendered by an engine without the
portal's builtin, for the same template and context: plain names, arguments that need
quoting (hypothesis over any text), keyword arguments, ``as var`` with a name that does
not reverse, autoescape off, another admin site's namespace. Then what the kept answer
depends on: a second script prefix, another URLconf and another language must each get
their own answer, not the first one's.
"""

import pytest
from django.template import Context, Engine
from django.template import engines as template_engines
from django.test import RequestFactory, override_settings
from django.urls import NoReverseMatch, set_script_prefix
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from portal.templatetags import portal_urls

STOCK = Engine(libraries={"admin_urls": "django.contrib.admin.templatetags.admin_urls"})
PORTAL = Engine(
    builtins=["portal.templatetags.portal_urls"],
    libraries={"admin_urls": "django.contrib.admin.templatetags.admin_urls"},
)

TEMPLATES = [
    "{% url 'admin:index' %}",
    "{% url 'admin:logout' %}|{% url 'set_language' %}",
    "{% url 'admin:app_list' app_label='core' %}",
    "{% url 'admin:app_list' app_label=label %}",
    "{% load admin_urls %}{% url 'admin:core_executionhistory_change' pk|admin_urlquote %}",
    "{% url 'admin:core_codexsession_change' object_id=pk %}",
    "{% url 'django-admindocs-docroot' as docsroot %}[{{ docsroot }}]",
    "{% url 'admin:index' as home %}[{{ home }}]",
    "{% autoescape off %}{% url 'admin:core_codexsession_change' pk %}{% endautoescape %}",
    "{% url 'admin:core_codexsession_change' pk %}",
    "{% url name %}",
]


@pytest.fixture(autouse=True)
def fresh():
    portal_urls.clear()
    yield
    portal_urls.clear()
    set_script_prefix("/")


def render(engine, source, **values):
    request = values.pop("request", None)
    context = Context({"label": "core", "pk": "a/b?c&d<e>\"'%", "name": "admin:index", **values})
    if request is not None:
        context.request = request  # type: ignore[attr-defined]
    return engine.from_string(source).render(context)


@pytest.mark.parametrize("source", TEMPLATES)
def test_same_output_as_django(source):
    expected = render(STOCK, source)
    assert render(PORTAL, source) == expected
    assert render(PORTAL, source) == expected  # the kept answer, the second time


def outcome(engine, source, **values):
    try:
        return render(engine, source, **values)
    except NoReverseMatch:
        return NoReverseMatch  # an empty id does not reverse, for either


@given(pk=st.text(max_size=30))
def test_any_argument_text(pk):
    for source in (TEMPLATES[4], TEMPLATES[9], TEMPLATES[5]):
        expected = outcome(STOCK, source, pk=pk)
        assert outcome(PORTAL, source, pk=pk) == expected
        assert outcome(PORTAL, source, pk=pk) == expected


def test_a_name_that_does_not_reverse_still_raises():
    for _ in range(2):
        with pytest.raises(NoReverseMatch):
            render(PORTAL, "{% url 'no-such-view' %}")


def test_arguments_that_are_not_plain_are_reversed_every_time():
    lazy = translation.gettext_lazy("core")
    assert render(PORTAL, TEMPLATES[3], label=lazy) == render(STOCK, TEMPLATES[3], label=lazy)
    assert not portal_urls._reversed


@override_settings(ROOT_URLCONF="tests.bench.urls")
def test_the_current_app_picks_its_admin_site():
    # The bench's URLconf has a second admin site, "baseline", with the same app name.
    request = RequestFactory().get("/")
    apps: list[str | None] = ["baseline", "admin", None]
    for app in apps:
        request.current_app = app  # type: ignore[assignment]
        got = render(PORTAL, "{% url 'admin:index' %}", request=request)
        assert got == render(STOCK, "{% url 'admin:index' %}", request=request)
        assert got == ("/baseline/" if app == "baseline" else "/admin/")


def test_each_script_prefix_gets_its_own_answer():
    first = render(PORTAL, TEMPLATES[0])
    set_script_prefix("/portal/")
    assert render(PORTAL, TEMPLATES[0]) == render(STOCK, TEMPLATES[0]) == "/portal" + first


def test_each_urlconf_gets_its_own_answer():
    source = "{% url 'baseline:index' as b %}[{{ b }}]"
    assert render(PORTAL, source) == "[]"
    with override_settings(ROOT_URLCONF="tests.bench.urls"):
        assert render(PORTAL, source) == render(STOCK, source) == "[/baseline/]"


@override_settings(ROOT_URLCONF="tests.admin.prefixed_urls")
def test_each_language_gets_its_own_answer():
    # The portal's own patterns are not translated; language-prefixed ones differ.
    for language in ("en", "pt-br", "en"):
        with translation.override(language):
            got = render(PORTAL, "{% url 'page' %}")
            assert got == render(STOCK, "{% url 'page' %}") == f"/{language}/page/"


def test_the_portal_engine_uses_it():
    template = template_engines["django"].from_string("{% url 'admin:index' %}")
    compiled = template.template  # type: ignore[attr-defined]
    nodes = compiled.nodelist.get_nodes_by_type(portal_urls.CachedURLNode)
    assert len(nodes) == 1
