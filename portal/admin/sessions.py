"""The idle timeout of sessions without a database write on every request.

A session ends ``SESSION_IDLE_MINUTES`` after the last request. Django's way to get that,
``SESSION_SAVE_EVERY_REQUEST``, writes the session row (``UPDATE django_session`` and a
commit, a network round trip and a WAL flush on Cloud SQL) on every request. Here the
session row is re-saved only when its stored expiry is more than
``SESSION_REFRESH_SECONDS`` older than a fresh one would be, so a busy user costs one
write a minute and the session still ends within that interval of the idle timeout.

``SESSION_ENGINE = "portal.admin.sessions"`` (database sessions that remember the stored
expiry) and :class:`IdleSessionMiddleware` (right after Django's SessionMiddleware)
work together; without this engine the middleware does nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.conf import settings
from django.contrib.sessions.backends import db
from django.http import HttpRequest, HttpResponse
from django.utils import timezone


class SessionStore(db.SessionStore):
    """Database sessions that keep the ``expire_date`` of the row they loaded."""

    #: When the stored row expires; None until a stored session has been loaded.
    stored_expiry: datetime.datetime | None = None

    # _get_session_from_db and _aget_session_from_db are private Django methods that
    # django-stubs does not declare.
    def _get_session_from_db(self):
        row = super()._get_session_from_db()  # type: ignore[misc]
        self.stored_expiry = row.expire_date if row is not None else None
        return row

    async def _aget_session_from_db(self):
        row = await super()._aget_session_from_db()  # type: ignore[misc]
        self.stored_expiry = row.expire_date if row is not None else None
        return row


def needs_refresh(session: SessionStore, now: datetime.datetime | None = None) -> bool:
    """Whether the stored expiry lags a fresh one by at least the refresh interval."""
    stored = getattr(session, "stored_expiry", None)
    if stored is None or session.is_empty():
        return False
    now = now or timezone.now()
    fresh = now + datetime.timedelta(seconds=session.get_expiry_age(modification=now))
    return fresh - stored >= datetime.timedelta(seconds=settings.SESSION_REFRESH_SECONDS)


class IdleSessionMiddleware:
    """Marks a used session for saving when its stored expiry is getting old.

    Django's SessionMiddleware (listed before this one, so it handles the response
    after it) then saves the row, pushing its expiry ``SESSION_COOKIE_AGE`` ahead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if (
            session is not None
            and session.accessed
            and not session.modified
            and needs_refresh(session)
        ):
            session.modified = True
        return response
