"""EXPLAIN of a statement from pg_stat_statements, and EXPLAIN ANALYZE of a read-only one.

pg_stat_statements keeps statements with their constants replaced by ``$1, $2, ...``:
``EXPLAIN (GENERIC_PLAN)`` (PostgreSQL 16+) plans such a text without values; older
servers cannot, and the page says so.

Both run like every diagnostic statement: in a savepoint that is always rolled back,
under the diagnostics statement and lock timeouts, and with ``transaction_read_only``
on, so the server itself refuses any write (a volatile function, ``nextval``).
EXPLAIN ANALYZE executes the statement, so it is further limited to what PostgreSQL's
grammar (pglast) shows to be one plain SELECT: no data-modifying CTE, no FOR
UPDATE/SHARE (row locks), no SELECT INTO, and no parameters (there are no values to
run it with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pglast
from django.db import Error, connections, transaction
from django.utils.translation import gettext
from pglast import ast

from diagnostics.runner import MARKER, SET_LIMITS, _limits, explain_error

EXPLAINABLE = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
GENERIC_PLAN_FROM = 16


@dataclass(frozen=True)
class Plan:
    lines: tuple[str, ...] = ()
    error: str | None = None
    analyzed: bool = False
    refused: bool = False  # not attempted: the statement or the server does not allow it

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _walk(node: Any):
    if isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from _walk(getattr(node, name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


def _single(text: str) -> tuple[Any | None, str | None]:
    try:
        tree = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        return None, gettext(
            "PostgreSQL's grammar cannot parse this text (%(error)s); it may be cut short."
        ) % {"error": exc}
    if len(tree) != 1:
        return None, gettext("The text holds several statements; EXPLAIN takes one.")
    return tree[0].stmt, None


def explainable(text: str) -> str | None:
    """None if ``text`` is one statement EXPLAIN accepts, else why not."""
    stmt, problem = _single(text)
    if problem:
        return problem
    if not isinstance(stmt, EXPLAINABLE):
        kind = type(stmt).__name__
        return gettext(
            "EXPLAIN shows plans of SELECT, INSERT, UPDATE, DELETE and MERGE, not %(kind)s."
        ) % {"kind": kind}
    return None


def read_only(text: str) -> str | None:
    """None if ``text`` is one plain SELECT safe to execute, else why not."""
    stmt, problem = _single(text)
    if problem:
        return problem
    if not isinstance(stmt, ast.SelectStmt):
        return gettext("Only a SELECT is executed by EXPLAIN ANALYZE here; other statements write.")
    for node in _walk(stmt):
        if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
            return gettext("It contains a data-modifying WITH clause.")
        if isinstance(node, ast.SelectStmt) and (node.lockingClause or node.intoClause):
            return gettext("It locks rows (FOR UPDATE/SHARE) or creates a table (INTO).")
        if isinstance(node, ast.ParamRef):
            return gettext(
                "It has parameters ($1, ...) with no values to run it with: use the generic "
                "plan above, or run EXPLAIN ANALYZE with real values in psql."
            )
    return None


def _run(alias: str, statement: str, *, analyzed: bool) -> Plan:
    statement_timeout, lock_timeout = _limits(None)
    connection = connections[alias]
    try:
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                cursor.execute(
                    SET_LIMITS,
                    {
                        "statement_timeout": str(statement_timeout),
                        "lock_timeout": str(lock_timeout),
                    },
                )
                cursor.execute("SELECT set_config('transaction_read_only', 'on', true)", {})
                # The statement is a text, not a template: its % signs are doubled so the
                # driver passes them through.
                cursor.execute(statement.replace("%", "%%"), {})
                lines = tuple(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True, using=alias)
    except Error as exc:
        failure = explain_error(exc, statement_timeout=statement_timeout, lock_timeout=lock_timeout)
        message = failure.message
        if failure.sqlstate == "42501":  # insufficient_privilege
            message += " " + gettext(
                "Planning a statement needs SELECT on its tables: GRANT SELECT on them to "
                "%(role)s, or GRANT pg_read_all_data (PostgreSQL 14+) for read access to every "
                "table."
            ) % {"role": connection.settings_dict.get("USER") or gettext("this role")}
        return Plan(error=message, analyzed=analyzed)
    return Plan(lines=lines, analyzed=analyzed)


def generic_plan(alias: str, text: str, *, server_major: int) -> Plan:
    if server_major < GENERIC_PLAN_FROM:
        return Plan(
            refused=True,
            error=gettext(
                "EXPLAIN (GENERIC_PLAN) needs PostgreSQL %(needed)s or later (this server is "
                "%(major)s): a statement with $1-style parameters cannot be planned without "
                "values here. Copy it into psql with real values and run EXPLAIN."
            )
            % {"needed": GENERIC_PLAN_FROM, "major": server_major},
        )
    problem = explainable(text)
    if problem:
        return Plan(error=problem, refused=True)
    return _run(alias, f"EXPLAIN {MARKER} (GENERIC_PLAN, VERBOSE) {text}", analyzed=False)


def analyze(alias: str, text: str) -> Plan:
    problem = read_only(text)
    if problem:
        return Plan(error=problem, analyzed=True, refused=True)
    return _run(alias, f"EXPLAIN {MARKER} (ANALYZE, BUFFERS, VERBOSE) {text}", analyzed=True)
