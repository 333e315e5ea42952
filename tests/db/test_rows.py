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


@pytest.mark.django_db
def test_select_gives_what_the_orm_gives_whatever_the_column_order():
    from portal.db.rows import select

    made = CodexSession.objects.create(
        session_id=uuid.uuid4(), user_id="u", model="m", status="failed", metadata={"a": [1, "ü"]}
    )
    orm = CodexSession.objects.get(pk=made.pk)
    sql = "SELECT {} FROM core.codex_sessions WHERE session_id = %(pk)s"
    for columns in ("session_id, metadata, created_at", "created_at, metadata, session_id"):
        (found,) = select(CodexSession, sql.format(columns), {"pk": made.pk})
        # The JSON column is parsed as the field parses it, not left as text.
        assert (found.pk, found.metadata, found.created_at) == (
            orm.pk,
            orm.metadata,
            orm.created_at,
        )
    assert select(CodexSession, sql.format("session_id"), {"pk": uuid.uuid4()}) == []


@pytest.mark.django_db
def test_select_refuses_a_column_that_is_no_field():
    from portal.db.rows import select

    with pytest.raises(ValueError, match=r"not fields of core\.CodexSession: \['side'\]"):
        select(CodexSession, "SELECT 1 AS side", {})
