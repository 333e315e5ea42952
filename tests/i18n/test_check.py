"""The translation check itself: it catches what it promises to catch, and the project passes."""

from pathlib import Path

import polib
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal import i18n_check


def texts(findings):
    return [f.text for f in findings]


# --- templates ----------------------------------------------------------------------------


def test_an_unmarked_sentence_in_a_template_is_reported():
    findings = i18n_check.check_template_source("{% load i18n %}<p>Sessions today</p>")
    assert texts(findings) == ["Sessions today"]


def test_marked_text_passes():
    source = (
        '{% load i18n %}<p title="{% translate "Tip" %}">{% translate "Sessions today" %}'
        "{% blocktranslate trimmed with n=x %}{{ n }} in the last 7 days{% endblocktranslate %}</p>"
    )
    assert i18n_check.check_template_source(source) == []


def test_an_unmarked_attribute_and_submit_value_are_reported():
    source = '<a title="Open the list">x</a><input type="submit" value="Yes, purge">'
    assert set(texts(i18n_check.check_template_source(source))) == {"Open the list", "Yes, purge"}


def test_a_sentence_split_by_an_if_is_still_seen():
    source = "<td>{% if a %}query {{ s }}{% else %}never{% endif %}</td>"
    found = " ".join(texts(i18n_check.check_template_source(source)))
    assert "query" in found and "never" in found


def test_a_literal_default_filter_argument_is_reported_unless_translated():
    assert texts(i18n_check.check_template_source('{{ x|default:"not set" }}')) == ["not set"]
    assert i18n_check.check_template_source('{{ x|default:_("not set") }}') == []


def test_css_classes_sql_and_names_are_not_words_to_translate():
    source = (
        '{% block bodyclass %}diagnostics{% endblock %}<span class="{% if x %}portal-card-alert'
        '{% endif %}">PostgreSQL · VACUUM · pg_stat_statements · 12 MB</span>'
    )
    assert i18n_check.check_template_source(source) == []


# --- Python --------------------------------------------------------------------------------

BAD_MODULE = """
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models

class Thing(models.Model):
    class Colour(models.TextChoices):
        RED = "red", "Bright red"
    name = models.CharField("display name", max_length=10, help_text="Shown in lists.")

    class Meta:
        verbose_name = "thing"

class ThingAdmin(admin.ModelAdmin):
    fieldsets = [("Main part", {"fields": ["name"]})]
    search_help_text = "A thing's name."

    @admin.display(description="Pretty name")
    def pretty(self, obj):
        return obj.name

    def view(self, request):
        messages.success(request, f"Saved {1} thing.")
        raise ValidationError("That is not a thing.")

class Status(admin.SimpleListFilter):
    title = "status of things"
    def lookups(self, request, model_admin):
        return [("a", "All good")]
"""


def test_every_kind_of_unmarked_python_sink_is_reported():
    found = set(texts(i18n_check.check_python_source(BAD_MODULE)))
    assert found == {
        "Bright red",
        "display name",
        "Shown in lists.",
        "thing",
        "Main part",
        "A thing's name.",
        "Pretty name",
        "f'Saved {1} thing.'",
        "That is not a thing.",
        "status of things",
        "All good",
    }


def test_the_same_module_with_gettext_passes():
    marked = BAD_MODULE.replace("from django.db import models", "from django.db import models\n")
    for text in [
        "Bright red",
        "display name",
        "Shown in lists.",
        "thing",
        "Main part",
        "A thing's name.",
        "Pretty name",
        "That is not a thing.",
        "status of things",
        "All good",
    ]:
        marked = marked.replace(f'"{text}"', f'_("{text}")')
    marked = marked.replace('f"Saved {1} thing."', '_("Saved one thing.")')
    assert i18n_check.check_python_source(marked) == []


# --- catalogs --------------------------------------------------------------------------------


def test_untranslated_and_fuzzy_entries_are_reported():
    po = polib.POFile()
    po.append(polib.POEntry(msgid="Dashboard", msgstr="Painel"))
    po.append(polib.POEntry(msgid="Sessions", msgstr=""))
    po.append(polib.POEntry(msgid="Tokens", msgstr="Fichas", flags=["fuzzy"]))
    problems = i18n_check.catalog_problems(str(po), "x.po")
    assert problems == ["x.po: untranslated: 'Sessions'", "x.po: fuzzy: 'Tokens'"]


def test_a_stale_catalog_is_reported(tmp_path, monkeypatch):
    # A copy of one app with a string the committed catalog does not have.
    app = tmp_path / "analytics"
    root = Path(i18n_check.ROOT)
    import shutil

    shutil.copytree(root / "analytics", app, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    (app / "templates").mkdir(exist_ok=True)
    (app / "templates" / "new.html").write_text(
        '{% load i18n %}<p>{% translate "A brand new sentence" %}</p>'
    )
    (tmp_path / "manage.py").write_text("")
    monkeypatch.setattr(i18n_check, "ROOT", tmp_path)
    monkeypatch.setattr(i18n_check, "APPS", ("analytics",))
    problems = i18n_check.check_catalogs()
    assert problems == [
        "analytics/locale/pt_BR/LC_MESSAGES/django.po: out of date with the "
        "sources (run `make translations`, then translate what it adds)"
    ]


# --- the project -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_project_passes_the_whole_check():
    """Every shown string marked, every pt-BR entry translated, the catalogs up to date."""
    try:
        call_command("check_translations")
    except CommandError as exc:  # the message lists every problem
        pytest.fail(str(exc))
