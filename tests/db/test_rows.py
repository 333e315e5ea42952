"""portal.db.rows.loaded: values by name, whatever the order a query returned them in."""

import datetime
import uuid

import pytest

from core.models import CodexSession
from portal.db.rows import loaded


def test_values_land_in_their_fields_in_any_order():
    pk, at = uuid.uuid4(), datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    forward = loaded(
        CodexSession, "default", {"session_id": pk, "status": "failed", "created_at": at}
    )
    backward = loaded(
        CodexSession, "default", {"created_at": at, "status": "failed", "session_id": pk}
    )
    for session in (forward, backward):
        assert (session.pk, session.status, session.created_at) == (pk, "failed", at)
        assert not session._state.adding
        assert session.get_deferred_fields() == {"user_id", "model", "metadata", "updated_at"}


def test_a_name_that_is_no_field_is_refused():
    with pytest.raises(ValueError, match=r"not fields of core\.CodexSession"):
        loaded(CodexSession, "default", {"session_id": uuid.uuid4(), "colour": "red"})
