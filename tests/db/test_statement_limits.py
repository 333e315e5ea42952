"""portal.limits.statement_limits: the limits PostgreSQL itself applies, statement by statement.

Outside a transaction the limits travel in the statement's own message (``SET LOCAL ...;
SET LOCAL ...; <statement>``), so every test here reads what the server applied
(``SHOW``), from inside the block and after it, against a model of its own. Served as
in production: autocommit, no transaction around the test (transactional_db), with a
session default of our own that the block must leave as it found it.
"""

from __future__ import annotations

import contextlib
import threading

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.limits import statement_limits
from tests.diagnostics.support import connect

#: The connection's own values, set at session level before each test (the web bounds'
#: part in production): what a statement outside any block must see.
SESSION = ("4321ms", "0")


def _ms(value: int) -> str:
    """How SHOW prints a whole number of milliseconds set as such."""
    return f"{value // 1000}s" if value % 1000 == 0 else f"{value}ms"


def shown() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        statement = cursor.fetchone()[0]
        cursor.execute("SHOW lock_timeout")
        return statement, cursor.fetchone()[0]


@pytest.fixture
def session_defaults(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{SESSION[0]}'")
        cursor.execute(f"SET lock_timeout = {SESSION[1]}")
    yield
    connection.close()  # the next test's connection starts without them


# --- any nesting of blocks, transactions and SET LOCALs ---------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("limits"), st.integers(1, 59).map(lambda n: n * 1000 + 7)),
        st.tuples(st.just("atomic"), st.just(0)),
        st.tuples(st.just("set_local"), st.integers(61, 99).map(lambda n: n * 1000 + 3)),
        st.tuples(st.just("show"), st.just(0)),
        st.tuples(st.just("exit"), st.just(0)),
    ),
    max_size=30,
)


class Model:
    """What PostgreSQL should show, worked out from the operations alone.

    ``stack``: the limits of blocks entered outside a transaction (they apply to every
    statement sent outside one, and to the first statement of a transaction opened
    inside them). ``tx``: the transaction's own settings once its first statement ran;
    a block entered inside a transaction sets its limits there (a savepoint's SET LOCAL,
    kept when the savepoint is released, until the transaction ends).
    """

    def __init__(self) -> None:
        self.stack: list[tuple[str, str]] = []
        self.contexts: list[str] = []  # "limits", "tx-limits", "atomic"
        self.tx: tuple[str, str] | None = None
        self.tx_started = False

    @property
    def in_tx(self) -> bool:
        return "atomic" in self.contexts or "tx-limits" in self.contexts

    def statement(self) -> tuple[str, str]:
        """One statement sent now: the settings it runs with."""
        outside = self.stack[-1] if self.stack else SESSION
        if not self.in_tx:
            return outside
        if not self.tx_started:
            self.tx, self.tx_started = outside, True
        assert self.tx is not None
        return self.tx


@pytest.mark.usefixtures("session_defaults")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations)
def test_every_statement_runs_with_the_innermost_limits(ops):
    """Blocks inside blocks, transactions opened inside them (Django's BEGIN, then
    savepoints), a transaction's own SET LOCAL, blocks entered inside a transaction:
    at each SHOW, PostgreSQL applies what the model says; after the last block, the
    session's own values are back."""
    model = Model()
    exits: list[contextlib.ExitStack] = []
    try:
        for kind, value in ops:
            if kind == "limits":
                block = contextlib.ExitStack()
                block.enter_context(statement_limits(value, value // 10))
                limits = (_ms(value), _ms(value // 10))
                if model.in_tx:
                    model.statement()  # the savepoint is a statement of the transaction
                    model.tx = limits
                    model.contexts.append("tx-limits")
                else:
                    model.stack.append(limits)
                    model.contexts.append("limits")
                exits.append(block)
            elif kind == "atomic":
                block = contextlib.ExitStack()
                if model.in_tx:
                    model.statement()  # SAVEPOINT
                else:
                    model.tx, model.tx_started = None, False  # BEGIN comes with the next one
                block.enter_context(transaction.atomic())
                model.contexts.append("atomic")
                exits.append(block)
            elif kind == "set_local":
                if not model.in_tx:
                    continue
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config('statement_timeout', %s, true)", [f"{value}ms"]
                    )
                model.statement()
                assert model.tx is not None
                model.tx = (_ms(value), model.tx[1])
            elif kind == "show":
                expected = model.statement()
                assert shown() == expected
            elif kind == "exit" and exits:
                exits.pop().close()
                context = model.contexts.pop()
                if context == "limits":
                    model.stack.pop()
                elif model.in_tx and model.tx_started:
                    model.statement()  # RELEASE SAVEPOINT: the settings stay
                if not model.in_tx:
                    model.tx, model.tx_started = None, False
    finally:
        while exits:
            exits.pop().close()
    assert not connection.in_atomic_block
    assert shown() == SESSION


# --- the statement itself goes through unchanged ---------------------------------------

hostile = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40
) | st.sampled_from(["%", "%%", "%s", "%(x)s", "'; SET statement_timeout = 0; --", "$$", "\\"])


@pytest.mark.usefixtures("session_defaults")
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(hostile, hostile)
def test_values_and_literal_percent_signs_reach_the_server_unchanged(first, second):
    with statement_limits(1234, 56), connection.cursor() as cursor:
        cursor.execute(
            "SELECT %(a)s::text, %(b)s::text, current_setting('statement_timeout')",
            {"a": first, "b": second},
        )
        assert cursor.fetchone() == (first, second, "1234ms")
        cursor.execute("SELECT '100%', current_setting('lock_timeout')")  # no parameters
        assert cursor.fetchone() == ("100%", "56ms")
        cursor.execute("SELECT %s::int + 1 WHERE %s::text = %s", [41, first, first])
        assert cursor.fetchall() == [(42,)]
    assert shown() == SESSION


@pytest.mark.usefixtures("session_defaults")
def test_no_transaction_and_no_set_statement_of_its_own():
    """The limits cost no statement of their own: one message per statement of the
    caller's, as Django logs what it sent (BEGIN and COMMIT too, had it opened a
    transaction)."""
    limits = "SET LOCAL statement_timeout = 2000; SET LOCAL lock_timeout = 300; "
    with (
        CaptureQueriesContext(connection) as queries,
        statement_limits(2000, 300),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")
    assert [q["sql"] for q in queries] == [f"{limits}SELECT 1", f"{limits}SELECT 2"]
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.usefixtures("session_defaults")
def test_rows_counts_and_orm_reads_are_the_statements_own():
    from core.models import CodexSession

    with statement_limits(2000, 300):
        CodexSession.objects.create(user_id="u", model="m", status="running")
        assert CodexSession.objects.count() == 1
        assert CodexSession.objects.filter(user_id="u").update(status="failed") == 1
        assert list(CodexSession.objects.values_list("status", flat=True)) == ["failed"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT generate_series(1, 3)")
            assert cursor.fetchall() == [(1,), (2,), (3,)]
            assert cursor.rowcount == 3
        # iterator() reads through a server-side cursor (DECLARE ... CURSOR FOR takes one
        # statement, so it goes as it is: a form's choices are read so).
        assert [s.status for s in CodexSession.objects.iterator(chunk_size=1)] == ["failed"]


# --- the limits hold, and a stopped statement leaves nothing behind ---------------------


@pytest.mark.usefixtures("session_defaults")
def test_a_statement_over_its_limit_is_stopped_and_the_connection_is_clean():
    with (
        pytest.raises(DatabaseError) as caught,
        statement_limits(50, 300),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT pg_sleep(2)")
    assert getattr(caught.value.__cause__, "sqlstate", None) == "57014"
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert shown() == SESSION  # nothing aborted, nothing left set


@pytest.mark.usefixtures("session_defaults")
def test_a_lock_wait_ends_at_the_block_s_lock_timeout():
    """The session's own lock_timeout is 0 (wait forever): only the block's limit can
    end the wait. The holder lets go after 20 s, so a missing limit fails, not hangs."""
    with connect(autocommit=False, application_name="lock-holder") as holder:
        holder.execute("LOCK TABLE core.projects IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(20, holder.rollback)
        release.start()
        try:
            with (
                pytest.raises(DatabaseError) as caught,
                statement_limits(5000, 100),
                connection.cursor() as cursor,
            ):
                cursor.execute("SELECT count(*) FROM core.projects")
        finally:
            release.cancel()
            holder.rollback()
    assert getattr(caught.value.__cause__, "sqlstate", None) == "55P03"
    assert shown() == SESSION


@pytest.mark.django_db
def test_inside_a_transaction_the_block_is_a_savepoint_that_keeps_the_outer_one_alive():
    """A test's (or a save's) transaction: a refused statement inside the block rolls
    back its savepoint only."""
    from core.models import CodexSession

    CodexSession.objects.create(user_id="kept", model="m", status="running")
    with pytest.raises(DatabaseError), statement_limits(2000, 300), connection.cursor() as c:
        c.execute("SELECT 1 / 0")
    assert CodexSession.objects.filter(user_id="kept").exists()
