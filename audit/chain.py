"""The audit tables' hash chains: verification and anchoring.

PostgreSQL builds the chain (``audit/migrations/0004_hash_chain.py``): every row gets
``chain_seq`` (1, 2, 3, ... per table, gapless), ``prev_hash`` (the previous row's
``row_hash``, 32 zero bytes for the first) and ``row_hash = sha256(prev_hash ||
canonical text)``, with ``created_at`` from the database clock. This module checks it
from the outside: it recomputes every hash in Python from the columns' text, so a
replaced or altered database function does not hide anything.

:func:`verify` walks each table in seq order and stops at the first broken link
(a row without a link, a gap or a repeat in the sequence, a ``prev_hash`` that is not
the previous row's hash, a ``row_hash`` that is not the hash of the row, a
``created_at`` earlier than the previous row's). An internally consistent chain can
still be a full rewrite (delete a row, recompute every hash): :func:`write_anchor`
writes each table's head (seq, hash, time) to the default storage, outside the
database, and :func:`verify` checks that the row at the latest anchored seq still has
the anchored hash. Since every hash commits to all rows before it, that also covers
every earlier anchor.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.db import connections, transaction
from psycopg import sql

GENESIS = bytes(32)
ANCHOR_DIR = "audit-anchors"
#: resource_type of the activity entry each verification run writes
VERIFICATION = "audit.chain"
VERIFY_ACTION = "verify_audit_chain"
ANCHOR_ACTION = "anchor_audit_chain"


def _time(value: Any) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: table -> its columns in canonical order, each (SQL expression giving its text, formatter)
COLUMNS: dict[str, list[tuple[str, Callable[[Any], str] | None]]] = {
    "activity_logs": [
        ("chain_seq::text", None),
        ("id::text", None),
        ("created_at", _time),
        ("user_id::text", None),
        ("actor_email", None),
        ("action", None),
        ("resource_type", None),
        ("resource_id", None),
        ("object_repr", None),
        ("details::text", None),
        ("host(ip_address)", None),
        ("user_agent", None),
        ("request_id", None),
        ("client_trace_id", None),
    ],
    "security_events": [
        ("chain_seq::text", None),
        ("id::text", None),
        ("created_at", _time),
        ("event_type", None),
        ("user_id::text", None),
        ("email_attempted", None),
        ("host(ip_address)", None),
        ("user_agent", None),
        ("details::text", None),
        ("client_trace_id", None),
    ],
}
TABLES = tuple(COLUMNS)
#: table -> the names of its canonical columns (the keys of an archived row)
COLUMN_NAMES = {
    table: [expr.removeprefix("host(").split(")")[0].split("::")[0] for expr, _ in columns]
    for table, columns in COLUMNS.items()
}
#: table -> its BEFORE INSERT trigger that sets created_at and the chain columns
TRIGGERS = {table: f"{table}_chain" for table in TABLES}


def texts(table: str, values: list[Any]) -> list[str | None]:
    """A row's values (in :data:`COLUMNS` order) as the texts its hash is computed from."""
    return [
        None if value is None else (formatter(value) if formatter else str(value))
        for (_expr, formatter), value in zip(COLUMNS[table], values, strict=True)
    ]


def canonical_text(table: str, texts: list[str | None]) -> bytes:
    """The canonical text of a row from its values' texts, UTF-8."""
    parts = [f"audit.{table};"]
    for text in texts:
        parts.append("N;" if text is None else f"S{len(text)}:{text};")
    return "".join(parts).encode()


def canonical(table: str, values: list[Any]) -> bytes:
    """The canonical text of a row (the values in :data:`COLUMNS` order), UTF-8."""
    return canonical_text(table, texts(table, values))


def row_hash(table: str, prev_hash: bytes, values: list[Any]) -> bytes:
    return hashlib.sha256(prev_hash + canonical(table, values)).digest()


def text_hash(table: str, prev_hash: bytes, texts: list[str | None]) -> bytes:
    return hashlib.sha256(prev_hash + canonical_text(table, texts)).digest()


@dataclass
class Head:
    table: str
    seq: int
    hash: str  # hex
    created_at: str | None = None


@dataclass
class Problem:
    table: str
    seq: int | None
    id: str | None
    what: str
    archive: str | None = None  # the archived object it is in

    def __str__(self) -> str:
        seq = "no seq" if self.seq is None else f"seq {self.seq}"
        where = f" id {self.id}" if self.id is not None or self.archive is None else ""
        if self.archive is not None:
            where += f" in archive {self.archive}"
        return f"audit.{self.table} {seq}{where}: {self.what}"


@dataclass
class Result:
    heads: dict[str, Head] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    problem: Problem | None = None
    anchor: str | None = None  # the anchor compared with
    #: table -> the latest archive boundary the chain starts after (seq, hash)
    boundaries: dict[str, Head] = field(default_factory=dict)
    archives: int | None = None  # archived objects verified (None: not asked)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_details(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problem": str(self.problem) if self.problem else None,
            "rows": self.rows,
            "heads": {t: asdict(h) for t, h in self.heads.items()},
            "anchor": self.anchor,
            "boundaries": {t: asdict(h) for t, h in self.boundaries.items()},
            "archives": self.archives,
        }


def _rows(cursor, table: str, batch: int) -> Iterator[tuple]:
    columns = sql.SQL(", ").join(sql.SQL(expr) for expr, _ in COLUMNS[table])
    # Rows without a link sort last, so a chain's own rows are checked first.
    cursor.execute(
        sql.SQL(
            "SELECT chain_seq, id::text, prev_hash, row_hash, created_at, {columns}"
            " FROM {table} AS t ORDER BY t.chain_seq NULLS LAST, t.created_at, t.id"
        ).format(columns=columns, table=sql.Identifier("audit", table))
    )
    while rows := cursor.fetchmany(batch):
        yield from rows


def latest_boundary(table: str, *, using: str = "default") -> Head | None:
    """The latest archive boundary of a table: its last archived seq, hash and time."""
    from audit.models import ArchiveBoundary

    found = (
        ArchiveBoundary.objects.using(using)
        .filter(table_name=table)
        .order_by("-last_seq")
        .values_list("last_seq", "last_hash", "last_created_at")
        .first()
    )
    if found is None:
        return None
    return Head(table, found[0], bytes(found[1]).hex(), _time(found[2]))


def verify_table(table: str, *, using: str = "default", batch: int = 5000) -> Result:
    """Walk one table's chain; the result's ``problem`` is the first broken link.

    The walk starts after the latest archive boundary (or at seq 1 from the genesis
    hash): the first row must follow it. An archive committed while the walk started
    moves the boundary; the walk is then made again from the new one.
    """
    for _attempt in range(3):
        boundary = latest_boundary(table, using=using)
        result = _walk(table, boundary, using=using, batch=batch)
        problem = result.problem
        at_start = problem is not None and result.rows[table] == 1
        if not at_start or latest_boundary(table, using=using) == boundary:
            break
    return result


def _walk(table: str, boundary: Head | None, *, using: str, batch: int) -> Result:
    result = Result()
    seq, prev, prev_time = 0, GENESIS, None
    if boundary is not None:
        result.boundaries[table] = boundary
        seq, prev = boundary.seq, bytes.fromhex(boundary.hash)
        prev_time = datetime.datetime.fromisoformat(str(boundary.created_at))
    count = 0
    conn = connections[using]
    # A server-side cursor (inside a transaction): the table is read in batches.
    with transaction.atomic(using=using), conn.chunked_cursor() as cursor:
        for row in _rows(cursor, table, batch):
            row_seq, row_id, row_prev, row_digest, created, *values = row
            count += 1
            problem = None
            row_prev = bytes(row_prev) if row_prev is not None else None
            row_digest = bytes(row_digest) if row_digest is not None else None
            if row_seq is None or row_digest is None or row_prev is None:
                problem = "the row has no chain link (inserted without the chain trigger)"
            elif row_seq != seq + 1:
                if count == 1 and boundary is not None and row_seq > seq + 1:
                    problem = (
                        f"the first row after the archive boundary (seq {seq}) is seq"
                        f" {row_seq}: rows removed"
                    )
                elif count == 1 and boundary is not None:
                    problem = f"seq {row_seq} is inside the archived range (up to seq {seq})"
                else:
                    problem = (
                        f"sequence jumps from {seq} to {row_seq}: rows removed"
                        if row_seq > seq + 1
                        else f"sequence repeats {row_seq}"
                    )
            elif row_prev != prev:
                problem = (
                    "prev_hash is not the archive boundary's last hash"
                    if count == 1 and boundary is not None
                    else "prev_hash is not the previous row's hash: a row was removed or altered"
                )
            elif row_hash(table, row_prev, values) != row_digest:
                problem = "row_hash does not match the row's content: the row was altered"
            elif prev_time is not None and created < prev_time:
                problem = "created_at is earlier than the previous row's: forged or reordered"
            if problem:
                result.problem = Problem(table, row_seq, row_id, problem)
                break
            seq, prev, prev_time = row_seq, row_digest, created
            result.heads[table] = Head(table, seq, prev.hex(), _time(created))
    result.rows[table] = count
    if table not in result.heads:
        result.heads[table] = boundary or Head(table, 0, GENESIS.hex())
    return result


def verify(
    *,
    using: str = "default",
    storage: Storage | None = None,
    check_anchor: bool = True,
    archives: bool = False,
) -> Result:
    """Verify every audit table from its latest archive boundary, the boundaries' own
    links, then (``archives``) every archived object, and compare with the latest anchor
    (when there is one)."""
    from audit import archive

    result = Result()
    for table in TABLES:
        part = verify_table(table, using=using)
        result.heads.update(part.heads)
        result.rows.update(part.rows)
        result.boundaries.update(part.boundaries)
        if part.problem:
            result.problem = part.problem
            return result
    result.problem = archive.check_boundaries(using=using)
    if result.problem:
        return result
    if archives:
        result.problem, result.archives = archive.verify_archives(using=using, storage=storage)
        if result.problem:
            return result
    if check_anchor:
        name, anchor = latest_anchor(using=using, storage=storage)
        result.anchor = name
        if anchor is not None:
            result.problem = compare_anchor(anchor, using=using, storage=storage)
    return result


def compare_anchor(
    anchor: dict[str, Any], *, using: str = "default", storage: Storage | None = None
) -> Problem | None:
    """The first way the database (or, for an archived row, its archive) disagrees with
    an anchor, or None."""
    from audit import archive

    with connections[using].cursor() as cursor:
        for table, head in sorted(anchor.get("heads", {}).items()):
            if table not in COLUMNS:
                continue
            seq, digest = int(head["seq"]), str(head["hash"])
            if seq == 0:
                continue
            boundary = latest_boundary(table, using=using)
            if boundary is not None and seq <= boundary.seq:
                problem = archive.compare_archived(table, seq, digest, using=using, storage=storage)
                if problem:
                    return problem
                continue
            cursor.execute(
                sql.SQL("SELECT id::text, row_hash FROM {t} WHERE chain_seq = %s").format(
                    t=sql.Identifier("audit", table)
                ),
                [seq],
            )
            found = cursor.fetchone()
            if found is None:
                return Problem(table, seq, None, "the anchored row is gone: rows removed")
            if found[1] is None or bytes(found[1]).hex() != digest:
                return Problem(
                    table,
                    seq,
                    found[0],
                    "row_hash differs from the anchored hash: the chain was rewritten",
                )
    return None


# --- Anchors --------------------------------------------------------------------


def anchor_prefix(using: str = "default") -> str:
    """Anchors of one database: ``audit-anchors/<database name>/``."""
    return f"{ANCHOR_DIR}/{connections[using].settings_dict['NAME']}"


def write_anchor(result: Result, *, using: str = "default", storage: Storage | None = None) -> str:
    """Write the verified heads as JSON to the storage; returns the object's name.

    Names sort by time (UTC, microseconds), so the latest is the greatest name.
    """
    storage = storage or default_storage
    now = datetime.datetime.now(datetime.UTC)
    body = {
        "database": connections[using].settings_dict["NAME"],
        "anchored_at": _time(now),
        "heads": {t: asdict(h) for t, h in result.heads.items()},
    }
    name = f"{anchor_prefix(using)}/{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    data = json.dumps(body, indent=2, sort_keys=True).encode()
    return storage.save(name, ContentFile(data))


def latest_anchor(
    *, using: str = "default", storage: Storage | None = None
) -> tuple[str | None, dict[str, Any] | None]:
    storage = storage or default_storage
    prefix = anchor_prefix(using)
    try:
        _dirs, files = storage.listdir(prefix)
    except FileNotFoundError:
        return None, None
    names = sorted(f for f in files if f.endswith(".json"))
    if not names:
        return None, None
    name = f"{prefix}/{names[-1]}"
    with storage.open(name, "rb") as fh:
        return name, json.loads(fh.read())
