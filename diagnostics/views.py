"""Views of the diagnostics pages and actions; each is wrapped in ``site.admin_view``.

Thin by design: resolve the database alias (404 for an unknown one), check the
permission, call :mod:`pages` or :mod:`actions`, render. Bad input becomes a message
and a redirect, never an error page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST

from diagnostics import actions, checks, explain, pages, targets
from diagnostics.pages import statement
from diagnostics.queries import activity

VIEW = "diagnostics.view_diagnostics"
SIGNAL = "diagnostics.signal_backend"
RESET = "diagnostics.reset_query_stats"
EXPLAIN_ANALYZE = "diagnostics.explain_analyze"
MAX_IDLE_MINUTES = 7 * 24 * 60
MAX_RUNNING_SECONDS = 7 * 24 * 3600


def _require(request: HttpRequest, *perms: str) -> None:
    if not request.user.has_perms(perms):
        raise PermissionDenied


def _context(site: AdminSite, request: HttpRequest, slug: str, alias: str, **extra) -> dict:
    if "info" not in extra:
        page = pages.base(alias)
        extra.update(page=page, info=page.info)
    return {
        **site.each_context(request),
        "title": gettext("Database diagnostics: %(page)s") % {"page": pages.TITLES[slug]}
        if slug != "overview"
        else gettext("Database diagnostics"),
        "slug": slug,
        "alias": alias,
        "tabs": [(s, label, pages.page_url(s, alias)) for s, label in pages.PAGES],
        "databases": pages.selector(alias),
        "can_signal": request.user.has_perm(SIGNAL),
        "can_reset": request.user.has_perm(RESET),
        "can_explain_analyze": request.user.has_perm(EXPLAIN_ANALYZE),
        **extra,
    }


def page_view(site: AdminSite, slug: str) -> Callable[[HttpRequest], HttpResponse]:
    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        request.current_app = site.name
        _require(request, VIEW)
        alias = targets.resolve(request)
        page = pages.build(slug, alias, request.GET)
        for error in getattr(page.panels.get("filters"), "errors", ()):
            messages.warning(request, error)
        for error in page.panels.get("errors", ()):
            messages.warning(request, error)
        return TemplateResponse(
            request,
            f"admin/diagnostics/{slug}.html",
            _context(
                site,
                request,
                slug,
                alias,
                page=page,
                info=page.info,
                p=page.panels,
                role_ident=checks.ident(page.info.role) if page.info else "",
            ),
        )

    view.__name__ = f"diagnostics_{slug}"
    return view


def _back(slug: str, alias: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(pages.page_url(slug, alias))


def _parse_session(raw_pid: str | None, raw_start: str | None) -> tuple[int, dt.datetime] | None:
    try:
        pid = int(raw_pid or "")
        backend_start = dt.datetime.fromisoformat(raw_start or "")
    except ValueError:
        return None
    if pid <= 0 or pid > 2**31 - 1 or backend_start.tzinfo is None:
        return None
    return pid, backend_start


def signal_view(site: AdminSite) -> Callable[[HttpRequest], HttpResponse]:
    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        request.current_app = site.name
        _require(request, VIEW, SIGNAL)
        alias = targets.resolve(request)
        back = "blocking" if request.POST.get("next") == "blocking" else "activity"
        kind = request.POST.get("kind")
        parsed = _parse_session(request.POST.get("pid"), request.POST.get("backend_start"))
        if kind not in {"cancel", "terminate"} or parsed is None:
            messages.error(
                request, gettext("That request named no session: nothing was signalled.")
            )
            return _back(back, alias)
        pid, backend_start = parsed
        if request.POST.get("confirm") != "yes":
            session = activity.session(
                alias,
                pid=pid,
                backend_start=backend_start,
                portal_app=settings.PORTAL_APPLICATION_NAME,
            )
            if session.ok and session.first() is None:
                if activity.pid_hidden(alias, pid=pid):
                    messages.error(
                        request,
                        gettext(
                            "Session %(pid)s is hidden from this database role (it lacks "
                            "pg_read_all_stats), so it cannot be identified safely: nothing to do."
                        )
                        % {"pid": pid},
                    )
                else:
                    messages.warning(
                        request,
                        gettext("Session %(pid)s has ended (or its pid was reused): nothing to do.")
                        % {"pid": pid},
                    )
                return _back(back, alias)
            return TemplateResponse(
                request,
                "admin/diagnostics/confirm_signal.html",
                _context(
                    site,
                    request,
                    back,
                    alias,
                    title=(
                        gettext("Cancel the query of session %(pid)s?")
                        if kind == "cancel"
                        else gettext("Terminate session %(pid)s?")
                    )
                    % {"pid": pid},
                    kind=kind,
                    pid=pid,
                    backend_start=backend_start,
                    session=session,
                    back=back,
                ),
            )
        outcome = actions.signal_backend(
            request=request, alias=alias, kind=kind, pid=pid, backend_start=backend_start
        )
        messages.add_message(request, getattr(messages, outcome.level.upper()), outcome.message)
        return _back(back, alias)

    return view


def _bounded_int(request: HttpRequest, name: str, low: int, high: int, error: str) -> int | None:
    """The whole number ``name`` of the form within [low, high]; else None and ``error``
    shown (the page goes back with nothing done)."""
    try:
        value = int(request.POST.get(name, ""))
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        messages.error(request, error)
        return None
    return value


def _chosen_sessions(request: HttpRequest) -> list:
    """The sessions ticked on a confirmation page (pid|backend_start), malformed ones
    left out."""
    chosen = []
    for raw in request.POST.getlist("session"):
        pid, _, start = raw.partition("|")
        parsed = _parse_session(pid, start)
        if parsed is not None:
            chosen.append(parsed)
    return chosen


def _report(request: HttpRequest, outcome, summary: str, gone: str) -> None:
    """The outcome of a bulk signal: the summary (an error when the server refused
    some), then what was left alone and each refusal."""
    if outcome.gone:
        summary += " " + gone % {"n": outcome.gone}
    messages.add_message(request, messages.ERROR if outcome.refused else messages.SUCCESS, summary)
    for line in outcome.messages:
        messages.error(request, line)


def terminate_idle_view(site: AdminSite) -> Callable[[HttpRequest], HttpResponse]:
    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        request.current_app = site.name
        _require(request, VIEW, SIGNAL)
        alias = targets.resolve(request)
        minutes = _bounded_int(
            request,
            "minutes",
            0,
            MAX_IDLE_MINUTES,
            gettext("Idle for: enter whole minutes from 0 to %(max)s.") % {"max": MAX_IDLE_MINUTES},
        )
        if minutes is None:
            return _back("activity", alias)
        include_portal = request.POST.get("include_portal") in {"1", "on", "true"}
        if request.POST.get("confirm") != "yes":
            candidates = activity.idle_sessions(
                alias,
                minutes=minutes,
                include_portal=include_portal,
                portal_app=settings.PORTAL_APPLICATION_NAME,
            )
            if candidates.ok and not candidates.rows:
                messages.info(
                    request,
                    gettext("No session has been idle for over %(minutes)s min.")
                    % {"minutes": minutes},
                )
                return _back("activity", alias)
            return TemplateResponse(
                request,
                "admin/diagnostics/confirm_terminate_idle.html",
                _context(
                    site,
                    request,
                    "activity",
                    alias,
                    title=gettext("Terminate sessions idle for over %(minutes)s min?")
                    % {"minutes": minutes},
                    minutes=minutes,
                    include_portal=include_portal,
                    candidates=candidates,
                ),
            )
        chosen = _chosen_sessions(request)
        if not chosen:
            messages.error(request, gettext("No session was selected: nothing was terminated."))
            return _back("activity", alias)
        outcome = actions.terminate_idle(
            request=request, alias=alias, minutes=minutes, sessions=chosen
        )
        summary = ngettext(
            "Terminated %(n)s idle session.", "Terminated %(n)s idle sessions.", outcome.terminated
        ) % {"n": outcome.terminated}
        gone = ngettext(
            "%(n)s had already ended or become busy (left alone).",
            "%(n)s had already ended or become busy (left alone).",
            outcome.gone,
        )
        _report(request, outcome, summary, gone)
        return _back("activity", alias)

    return view


def reset_view(site: AdminSite) -> Callable[[HttpRequest], HttpResponse]:
    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        request.current_app = site.name
        _require(request, VIEW, RESET)
        alias = targets.resolve(request)
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/diagnostics/confirm_reset.html",
                _context(site, request, "queries", alias, title=gettext("Reset query statistics?")),
            )
        outcome = actions.reset_query_stats(request=request, alias=alias)
        messages.add_message(request, getattr(messages, outcome.level.upper()), outcome.message)
        return _back("queries", alias)

    return view


def signal_long_view(site: AdminSite) -> Callable[[HttpRequest], HttpResponse]:
    """Cancel or terminate every session running a query longer than N seconds: a
    confirmation page lists them (each can be unticked), then each is signalled only if
    it is still the same session running a query that old."""

    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        request.current_app = site.name
        _require(request, VIEW, SIGNAL)
        alias = targets.resolve(request)
        kind = request.POST.get("kind")
        if kind not in {"cancel", "terminate"}:
            messages.error(request, gettext("Choose cancel or terminate: nothing was signalled."))
            return _back("activity", alias)
        seconds = _bounded_int(
            request,
            "seconds",
            1,
            MAX_RUNNING_SECONDS,
            gettext("Running longer than: enter whole seconds from 1 to %(max)s.")
            % {"max": MAX_RUNNING_SECONDS},
        )
        if seconds is None:
            return _back("activity", alias)
        include_portal = request.POST.get("include_portal") in {"1", "on", "true"}
        if request.POST.get("confirm") != "yes":
            candidates = activity.long_sessions(
                alias,
                seconds=seconds,
                include_portal=include_portal,
                portal_app=settings.PORTAL_APPLICATION_NAME,
            )
            if candidates.ok and not candidates.rows:
                messages.info(
                    request,
                    gettext("No query has been running for over %(seconds)s s.")
                    % {"seconds": seconds},
                )
                return _back("activity", alias)
            return TemplateResponse(
                request,
                "admin/diagnostics/confirm_signal_long.html",
                _context(
                    site,
                    request,
                    "activity",
                    alias,
                    title=(
                        gettext("Cancel queries running longer than %(seconds)s s?")
                        if kind == "cancel"
                        else gettext("Terminate queries running longer than %(seconds)s s?")
                    )
                    % {"seconds": seconds},
                    kind=kind,
                    seconds=seconds,
                    include_portal=include_portal,
                    candidates=candidates,
                ),
            )
        chosen = _chosen_sessions(request)
        if not chosen:
            messages.error(request, gettext("No session was selected: nothing was signalled."))
            return _back("activity", alias)
        outcome = actions.signal_long_running(
            request=request, alias=alias, kind=kind, seconds=seconds, sessions=chosen
        )
        if kind == "cancel":
            summary = ngettext(
                "Cancelled the queries of %(n)s session.",
                "Cancelled the queries of %(n)s sessions.",
                outcome.signalled,
            ) % {"n": outcome.signalled}
        else:
            summary = ngettext(
                "Terminated %(n)s session.", "Terminated %(n)s sessions.", outcome.signalled
            ) % {"n": outcome.signalled}
        gone = ngettext(
            "%(n)s had already finished that query or ended (left alone).",
            "%(n)s had already finished that query or ended (left alone).",
            outcome.gone,
        )
        _report(request, outcome, summary, gone)
        return _back("activity", alias)

    return view


def _statement_response(
    site: AdminSite, request: HttpRequest, alias: str, params, analyzed=None
) -> TemplateResponse:
    page = pages.base(alias)
    statement.build(page, params)
    for error in page.panels.get("errors", ()):
        messages.warning(request, error)
    queryid = page.panels.get("queryid")
    return TemplateResponse(
        request,
        "admin/diagnostics/statement.html",
        _context(
            site,
            request,
            "queries",
            alias,
            page=page,
            info=page.info,
            p=page.panels,
            analyzed=analyzed,
            title=gettext("Database diagnostics: statement %(queryid)s") % {"queryid": queryid},
            role_ident=checks.ident(page.info.role) if page.info else "",
        ),
    )


def statement_view(site: AdminSite) -> Callable[[HttpRequest], HttpResponse]:
    """One statement of pg_stat_statements: figures, history, generic plan, index hints."""

    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        request.current_app = site.name
        _require(request, VIEW)
        return _statement_response(site, request, targets.resolve(request), request.GET)

    return view


def explain_analyze_view(site: AdminSite) -> Callable[[HttpRequest], HttpResponse]:
    """EXPLAIN ANALYZE of a read-only recorded statement: its own permission, POST with
    CSRF, rolled back, under the statement timeout, and audited whatever the outcome."""

    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        request.current_app = site.name
        _require(request, VIEW, EXPLAIN_ANALYZE)
        alias = targets.resolve(request)
        page = pages.base(alias)
        statement.build(page, request.POST)
        text = page.panels.get("text")
        if page.info is None or text is None:
            messages.error(
                request, gettext("That statement is not readable here: nothing was run.")
            )
            return HttpResponseRedirect(pages.page_url("queries", alias))
        plan = actions.explain_analyze(
            request=request,
            alias=alias,
            database=page.info.database,
            queryid=page.panels["queryid"],
            text=text,
            run=explain.analyze,
        )
        return _statement_response(site, request, alias, request.POST, analyzed=plan)

    return view
