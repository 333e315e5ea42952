"""Credentials out of SQL statement texts, with PostgreSQL's own grammar.

Statement texts reach the portal from ``pg_stat_activity`` and ``pg_stat_statements``
(which keeps utility statements such as ``ALTER ROLE ... PASSWORD`` verbatim) and are
shown on the diagnostics pages, written into audit entries and copied into
``analytics.query_stat_snapshots``, which Metabase reads. :func:`redact_sql` is the one
function every one of those paths uses.

How it decides, per statement (pglast, the binding of PostgreSQL's parser):

* Statements whose literals are credentials or connection strings -- CREATE/ALTER
  ROLE/USER/GROUP (and ALTER ROLE ... SET), CREATE/ALTER USER MAPPING, CREATE/ALTER
  SUBSCRIPTION, CREATE/ALTER SERVER and FOREIGN DATA WRAPPER, SET / ALTER SYSTEM /
  ALTER DATABASE SET of a setting whose name names a secret -- have *every* string-like
  literal replaced, whatever its quoting: ``'...'``, ``E'...'``, ``$$...$$``,
  ``$tag$...$tag$``, ``U&'...'`` (and its UESCAPE), ``N'...'``, ``B'...'``, ``X'...'``.
* A statement that calls a function taking a connection string or a key (dblink*,
  pgcrypto's keyed functions, ``set_config`` of a secret-named setting, any function
  whose own name names a secret) is treated the same way: all its literals go, which
  also covers a connection string built by concatenation.
* In every other statement, a literal or comment whose content looks like a credential
  (``password=``, ``user:pass@`` in a URL, a bearer token, ...) is replaced.

A text the grammar rejects (cut at ``track_activity_query_size``, another dialect) is
replaced whole by :data:`UNPARSEABLE` when it mentions anything credential-like, and is
kept otherwise. Normalized pg_stat_statements texts (``$1``) parse like any other.

The output is itself valid SQL of the same shape (literals become ``'********'``), so
redacting twice gives the same text -- the data migration that re-redacts stored
snapshots relies on that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, overload

from pglast import parser

from audit.services import MASK, is_secret_key

REDACTED_LITERAL = f"'{MASK}'"
REDACTED_COMMENT = f"/* {MASK} */"
UNPARSEABLE = f"/* {MASK} statement not shown: unparseable, possibly sensitive */"

# Statement node types whose every literal is a credential or part of a connection string.
_SECRET_STATEMENTS = frozenset(
    {
        "CreateRoleStmt",  # CREATE ROLE / USER / GROUP
        "AlterRoleStmt",  # ALTER ROLE / USER ... PASSWORD
        "AlterRoleSetStmt",  # ALTER ROLE ... SET x = '...'
        "CreateUserMappingStmt",
        "AlterUserMappingStmt",
        "CreateSubscriptionStmt",  # CONNECTION 'host=... password=...'
        "AlterSubscriptionStmt",
        "CreateForeignServerStmt",  # OPTIONS (host ..., password ...)
        "AlterForeignServerStmt",
        "CreateFdwStmt",
        "AlterFdwStmt",
    }
)
# Settings statements are secret when the setting's name is (SET app.api_key = '...').
_SETTING_STATEMENTS = frozenset({"VariableSetStmt", "AlterDatabaseSetStmt", "AlterSystemStmt"})

# Functions that take a connection string or a key among their arguments.
_SECRET_FUNCTIONS = frozenset(
    {
        "crypt",
        "hmac",
        "encrypt",
        "decrypt",
        "encrypt_iv",
        "decrypt_iv",
        "pgp_sym_encrypt",
        "pgp_sym_encrypt_bytea",
        "pgp_sym_decrypt",
        "pgp_sym_decrypt_bytea",
        "pgp_pub_decrypt",
        "pgp_pub_decrypt_bytea",
        "pgp_pub_encrypt",
        "pgp_pub_encrypt_bytea",
    }
)
_SECRET_FUNCTION_PREFIXES = ("dblink",)

_LITERAL_TOKENS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST"})
_COMMENT_TOKENS = frozenset({"C_COMMENT", "SQL_COMMENT"})

# Credential-looking content, for literals and comments of ordinary statements and for
# texts the grammar rejects. Deliberately broad: a false positive hides a harmless
# literal, a false negative shows a password.
_CREDENTIAL = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|private[_-]?key|credential|"
    r"authori[sz]ation|bearer\s|sslkey|sslpassword|"
    r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]*@|"  # scheme://user:password@
    r"\b(user\s+mapping|subscription|dblink|connection|server\b.*\boptions)|"
    r"\b(create|alter)\s+(role|user|group)\b|"  # every literal of a role statement
    r"crypt|hmac|set_config",  # pgcrypto's keyed functions, settings set by function
    re.IGNORECASE | re.DOTALL,
)


@overload
def redact_sql(text: str) -> str: ...
@overload
def redact_sql(text: None) -> None: ...
def redact_sql(text: str | None) -> str | None:
    """``text`` with every credential replaced by ``'********'`` (see the module doc)."""
    if not text:
        return text
    if "\x00" in text:  # the C parser would stop at the NUL and never see the rest
        return redact_sql(text.replace("\x00", ""))
    try:
        parsed = json.loads(parser.parse_sql_json(text))
    except Exception:  # pglast raises ParseError (and ValueError for some inputs)
        return UNPARSEABLE if _CREDENTIAL.search(text) else text
    try:
        tokens = parser.scan(text)
    except Exception:  # the scanner accepts what the parser does; kept for safety
        return UNPARSEABLE if _CREDENTIAL.search(text) else text

    encoded = text.encode("utf-8")
    secret_spans = []  # character ranges of statements whose every literal goes
    for raw in parsed.get("stmts", []):
        if not _is_secret_statement(raw.get("stmt", {})):
            continue
        start = raw.get("stmt_location", 0)
        length = raw.get("stmt_len", 0)
        end = start + length if length else len(encoded)
        secret_spans.append(
            (len(encoded[:start].decode("utf-8")), len(encoded[:end].decode("utf-8")))
        )

    out: list[str] = []
    position = 0
    skip_to = -1
    for index, token in enumerate(tokens):
        if token.start <= skip_to or (
            token.name not in _LITERAL_TOKENS and token.name not in _COMMENT_TOKENS
        ):
            continue
        piece = text[token.start : token.end + 1]
        end = token.end
        if token.name == "USCONST" and index + 2 < len(tokens):
            # U&'...' UESCAPE '!': the escape character goes with the literal it decodes,
            # or the redacted text would no longer parse.
            after, escape = tokens[index + 1], tokens[index + 2]
            if after.name == "UESCAPE" and escape.name == "SCONST":
                end = skip_to = escape.end
        in_secret = any(lo <= token.start < hi for lo, hi in secret_spans)
        if token.name in _COMMENT_TOKENS:
            if not (in_secret or _CREDENTIAL.search(piece)):
                continue
            replacement = REDACTED_COMMENT
            if token.name == "SQL_COMMENT":
                replacement += "\n" if piece.endswith("\n") else ""
        else:
            if piece == REDACTED_LITERAL or not (in_secret or _CREDENTIAL.search(piece)):
                continue
            replacement = REDACTED_LITERAL
        out.append(text[position : token.start])
        out.append(replacement)
        position = end + 1
    out.append(text[position:])
    return "".join(out)


def _is_secret_statement(stmt: dict[str, Any]) -> bool:
    for kind, node in stmt.items():
        if kind in _SECRET_STATEMENTS:
            return True
        if kind in _SETTING_STATEMENTS and _secret_setting(node):
            return True
    return any(_is_secret_call(call) for call in _nodes(stmt, "FuncCall"))


def _secret_setting(node: dict[str, Any]) -> bool:
    setstmt = node.get("setstmt", node)
    name = setstmt.get("name")
    return name is None or is_secret_key(name) or bool(_CREDENTIAL.search(name))


def _is_secret_call(call: dict[str, Any]) -> bool:
    names = [part.get("String", {}).get("sval", "") for part in call.get("funcname", [])]
    name = names[-1].lower() if names else ""
    if name in _SECRET_FUNCTIONS or name.startswith(_SECRET_FUNCTION_PREFIXES):
        return True
    if is_secret_key(name) or _CREDENTIAL.search(name):
        return True
    if name == "set_config":
        args = call.get("args") or []
        setting = args[0].get("A_Const", {}).get("sval", {}).get("sval") if args else None
        # A name that is not a literal could be anything: treat it as a secret.
        return setting is None or is_secret_key(setting) or bool(_CREDENTIAL.search(setting))
    return False


def _nodes(tree: Any, kind: str) -> Iterator[dict[str, Any]]:
    """Every node of type ``kind`` in a parse tree in pglast's JSON form."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == kind and isinstance(value, dict):
                    yield value
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
