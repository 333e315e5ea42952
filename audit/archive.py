"""Archiving audit rows past their retention: export, verify, then remove, chain intact.

``manage.py archive_audit`` (the migrator, the tables' owner) takes, per table, the
prefix of the chain older than a cutoff (``--before`` or ``AUDIT_RETENTION_DAYS``),
after the latest archive boundary:

1. streams it in seq order into a gzip JSON-lines object, checking every link and
   recomputing every hash as it goes (the export must chain from the previous
   archive's last hash, or from the genesis hash at seq 1), and that the first row
   left behind chains from the last one exported;
2. writes it to the default storage (Google Cloud Storage when ``GS_BUCKET_NAME`` is
   set, ``MEDIA_ROOT`` otherwise: where the anchors go) at
   ``audit-archive/<database>/<table>/<first seq>-<last seq>.jsonl.gz``;
3. reads the object back and verifies it again from its bytes alone (SHA-256, every
   hash, the seqs, the ends);
4. in one transaction: inserts the boundary (``audit.archive_boundaries``), deletes
   exactly those rows, and appends the run's activity entry. The database checks the
   boundary and the DELETE itself (``audit/migrations/0006_archive_boundaries.py``):
   the owner only, exactly that prefix, continuing the previous boundary.

Anything wrong before step 4 deletes nothing; step 4 is all or nothing.

The object's first line describes it (``{"archive": 1, "table": ..., "first_seq": ...}``);
every further line is one row: ``chain_seq`` (a number), ``prev_hash`` and ``row_hash``
(hex), and every column of the row's canonical text (``audit/chain.py``) as that text
(``created_at`` in UTC with microseconds, ``details`` as PostgreSQL prints the jsonb,
``ip_address`` as ``host()``), or null. So a row's hash recomputes from the line alone:
``sha256(prev_hash || canonical text)``.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.db import DatabaseError, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg import sql

from audit import chain
from audit.models import ArchiveBoundary
from audit.services import record_activity

ARCHIVE_DIR = "audit-archive"
FORMAT = 1
#: the activity entry of each run: action and resource type
ARCHIVE_ACTION = "archive_audit"
ARCHIVE = "audit.archive"
_LOCK = "audit archive"


class ArchiveError(Exception):
    """A reason, in one line, why nothing was archived."""


# --- the cutoff --------------------------------------------------------------------


def retention_cutoff(now: datetime.datetime | None = None) -> datetime.datetime | None:
    """``now - AUDIT_RETENTION_DAYS``; None when the retention is to keep forever."""
    days = settings.AUDIT_RETENTION_DAYS
    if days is None:
        return None
    return (now or timezone.now()) - datetime.timedelta(days=days)


def parse_before(text: str, now: datetime.datetime | None = None) -> datetime.datetime:
    """``YYYY-MM-DD`` as the start of that day in UTC; refused when in the future."""
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise ArchiveError(
            _("--before must be a date as YYYY-MM-DD, not %(value)r") % {"value": text}
        ) from None
    if len(text) != 10:
        raise ArchiveError(
            _("--before must be a date as YYYY-MM-DD, not %(value)r") % {"value": text}
        )
    cutoff = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    if cutoff > (now or timezone.now()):
        raise ArchiveError(
            _("--before %(date)s is in the future: only rows already written can be archived")
            % {"date": text}
        )
    return cutoff


# --- planning and exporting ----------------------------------------------------------


@dataclass
class Plan:
    table: str
    first_seq: int
    last_seq: int
    prev_hash: bytes
    before: datetime.datetime

    @property
    def rows(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass
class Archived:
    plan: Plan
    name: str  # the object's name in the storage ("" for a dry run)
    sha256: str
    size: int
    last_hash: bytes
    last_created_at: datetime.datetime


def database_name(using: str) -> str:
    return str(connections[using].settings_dict["NAME"])


def object_name(plan: Plan, using: str) -> str:
    return (
        f"{ARCHIVE_DIR}/{database_name(using)}/{plan.table}/"
        f"{plan.first_seq}-{plan.last_seq}.jsonl.gz"
    )


def check_owner(using: str) -> None:
    """Refuse, before any work, a role that is not the owner of every audit table."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT current_user, c.relname, pg_get_userbyid(c.relowner)"
            " FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace"
            " AND c.relname = ANY(%s) AND c.relowner <> (SELECT oid FROM pg_roles"
            " WHERE rolname = current_user)",
            [[*chain.TABLES, "archive_boundaries"]],
        )
        row = cursor.fetchone()
    if row is not None:
        raise ArchiveError(
            _(
                "archive_audit must run as the owner of the audit tables (the migrator): "
                "audit.%(table)s belongs to %(owner)s, this connection is %(user)s"
            )
            % {"table": row[1], "owner": row[2], "user": row[0]}
        )


def plan_table(
    table: str, before: datetime.datetime, *, using: str, max_rows: int | None = None
) -> Plan | None:
    """The chain prefix after the latest boundary whose rows are older than ``before``.

    The chain's times never decrease (the verifier checks it), so that prefix ends at
    the newest row older than the cutoff: one step down the created_at index.
    """
    boundary = chain.latest_boundary(table, using=using)
    after = boundary.seq if boundary else 0
    prev = bytes.fromhex(boundary.hash) if boundary else chain.GENESIS
    with connections[using].cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT chain_seq FROM {t} WHERE created_at < %s AND chain_seq IS NOT NULL"
                " ORDER BY created_at DESC, chain_seq DESC LIMIT 1"
            ).format(t=sql.Identifier("audit", table)),
            [before],
        )
        row = cursor.fetchone()
    if row is None or row[0] <= after:
        return None
    last = row[0] if max_rows is None else min(row[0], after + max_rows)
    return Plan(table, after + 1, last, prev, before)


def _header(plan: Plan, using: str) -> dict[str, Any]:
    return {
        "archive": FORMAT,
        "database": database_name(using),
        "table": plan.table,
        "first_seq": plan.first_seq,
        "last_seq": plan.last_seq,
        "rows": plan.rows,
        "prev_hash": plan.prev_hash.hex(),
        "before": chain._time(plan.before),
        "columns": chain.COLUMN_NAMES[plan.table],
    }


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _live_rows(plan: Plan, using: str, batch: int = 5000) -> Iterator[tuple]:
    columns = sql.SQL(", ").join(sql.SQL(expr) for expr, _f in chain.COLUMNS[plan.table])
    conn = connections[using]
    with transaction.atomic(using=using), conn.chunked_cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT chain_seq, id::text, prev_hash, row_hash, {columns} FROM {t} AS t"
                " WHERE t.chain_seq BETWEEN %s AND %s ORDER BY t.chain_seq"
            ).format(columns=columns, t=sql.Identifier("audit", plan.table)),
            [plan.first_seq, plan.last_seq],
        )
        while rows := cursor.fetchmany(batch):
            yield from rows


def export(plan: Plan, *, using: str, storage: Storage | None, dry_run: bool = False) -> Archived:
    """Write the plan's rows to the storage (checking each link), then read them back."""
    with tempfile.TemporaryFile() as tmp:
        seq, prev, prev_time = plan.first_seq - 1, plan.prev_hash, None
        with gzip.GzipFile(fileobj=tmp, mode="wb", mtime=0) as out:
            out.write(_line(_header(plan, using)))
            for row in _live_rows(plan, using):
                row_seq, row_id, row_prev, row_digest, *values = row
                row_prev = bytes(row_prev) if row_prev is not None else None
                row_digest = bytes(row_digest) if row_digest is not None else None
                texts = chain.texts(plan.table, values)
                created = texts[chain.COLUMN_NAMES[plan.table].index("created_at")]
                problem = None
                if row_seq != seq + 1:
                    problem = f"sequence jumps from {seq} to {row_seq}: rows removed"
                elif row_prev != prev:
                    problem = "prev_hash is not the previous row's hash"
                elif chain.text_hash(plan.table, prev, texts) != row_digest:
                    problem = "row_hash does not match the row's content"
                elif prev_time is not None and created is not None and created < prev_time:
                    problem = "created_at is earlier than the previous row's"
                if problem:
                    raise ArchiveError(
                        _(
                            "audit.%(table)s seq %(seq)s id %(id)s: %(problem)s; nothing "
                            "archived (run verify_audit_chain)"
                        )
                        % {"table": plan.table, "seq": row_seq, "id": row_id, "problem": problem}
                    )
                assert row_digest is not None
                line = {
                    "chain_seq": row_seq,
                    "prev_hash": prev.hex(),
                    "row_hash": row_digest.hex(),
                    **dict(zip(chain.COLUMN_NAMES[plan.table], texts, strict=True)),
                }
                line["chain_seq"] = row_seq
                out.write(_line(line))
                seq, prev, prev_time = row_seq, row_digest, created
        if seq != plan.last_seq:
            raise ArchiveError(
                _(
                    "audit.%(table)s: rows up to seq %(last)s were planned, the export "
                    "ended at %(seq)s"
                )
                % {"table": plan.table, "last": plan.last_seq, "seq": seq}
            )
        _check_next(plan, prev, using)
        size = tmp.tell()
        tmp.seek(0)
        digest = hashlib.sha256()
        while chunk := tmp.read(1 << 20):
            digest.update(chunk)
        tmp.seek(0)
        last_time = datetime.datetime.fromisoformat(str(prev_time))
        archived = Archived(plan, "", digest.hexdigest(), size, prev, last_time)
        if dry_run:
            return archived
        storage = storage or default_storage
        try:
            archived.name = storage.save(object_name(plan, using), File(tmp))
        except Exception as exc:  # any storage backend's failure: say which, keep the rows
            raise ArchiveError(
                _("could not write the archive of audit.%(table)s to the storage: %(error)s")
                % {"table": plan.table, "error": f"{type(exc).__name__}: {exc}"}
            ) from exc
    problem = read_back(archived, storage)
    if problem:
        raise ArchiveError(
            _("the archive %(name)s read back differs: %(problem)s; nothing deleted")
            % {"name": archived.name, "problem": problem}
        )
    return archived


def _check_next(plan: Plan, last_hash: bytes, using: str) -> None:
    """The row after the export must chain from its last row (else it is no prefix)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT prev_hash FROM {t} WHERE chain_seq = %s").format(
                t=sql.Identifier("audit", plan.table)
            ),
            [plan.last_seq + 1],
        )
        row = cursor.fetchone()
    if row is not None and (row[0] is None or bytes(row[0]) != last_hash):
        raise ArchiveError(
            _(
                "audit.%(table)s seq %(seq)s does not chain from seq %(last)s; nothing "
                "archived (run verify_audit_chain)"
            )
            % {"table": plan.table, "seq": plan.last_seq + 1, "last": plan.last_seq}
        )


# --- reading an object back ----------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A reader that hashes every byte it passes on."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.sha.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)


@dataclass
class ObjectCheck:
    problem: str | None = None
    seq: int | None = None  # the row the problem is at
    sha256: str = ""
    rows: int = 0
    last_seq: int = 0
    last_hash: bytes = b""
    last_created_at: str | None = None
    hash_at: str | None = None  # the row hash at the asked seq


def read_object(
    storage: Storage,
    name: str,
    *,
    table: str,
    first_seq: int,
    prev_hash: bytes,
    want_seq: int | None = None,
) -> ObjectCheck:
    """Verify an archived object from its bytes: every link and hash, from ``prev_hash``
    at ``first_seq``; the result says where it fails, or its ends and SHA-256."""
    result = ObjectCheck()
    try:
        fh = storage.open(name, "rb")
    except Exception as exc:  # any backend: a missing or unreadable object
        result.problem = f"cannot be read: {type(exc).__name__}: {exc}"
        return result
    with fh:
        hashing = _Hashing(fh)
        seq, prev, prev_time = first_seq - 1, prev_hash, None
        try:
            with gzip.GzipFile(fileobj=io.BufferedReader(hashing), mode="rb") as lines:
                header = json.loads(lines.readline())
                if not isinstance(header, dict) or header.get("archive") != FORMAT:
                    result.problem = "it is not an audit archive"
                    return result
                if header.get("table") != table or header.get("first_seq") != first_seq:
                    result.problem = "its header names another table or range"
                    return result
                for raw in lines:
                    row = json.loads(raw)
                    row_seq = row.get("chain_seq")
                    texts = [row.get(c) for c in chain.COLUMN_NAMES[table]]
                    texts[0] = None if row_seq is None else str(row_seq)
                    what = None
                    if row_seq != seq + 1:
                        what = f"sequence jumps from {seq} to {row_seq}"
                    elif row.get("prev_hash") != prev.hex():
                        what = "prev_hash is not the previous row's hash"
                    elif chain.text_hash(table, prev, texts).hex() != row.get("row_hash"):
                        what = "row_hash does not match the row's content"
                    elif prev_time is not None and row.get("created_at") < prev_time:
                        what = "created_at is earlier than the previous row's"
                    if what:
                        result.problem, result.seq = what, row_seq
                        return result
                    seq, prev, prev_time = (
                        row_seq,
                        bytes.fromhex(row["row_hash"]),
                        row["created_at"],
                    )
                    result.rows += 1
                    if want_seq == seq:
                        result.hash_at = row["row_hash"]
            while hashing.read(1 << 20):
                pass
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError) as exc:
            result.problem = f"is not readable gzip JSON lines: {type(exc).__name__}: {exc}"
            return result
    result.sha256 = hashing.sha.hexdigest()
    result.last_seq, result.last_hash, result.last_created_at = seq, prev, prev_time
    return result


def read_back(archived: Archived, storage: Storage) -> str | None:
    plan = archived.plan
    check = read_object(
        storage, archived.name, table=plan.table, first_seq=plan.first_seq, prev_hash=plan.prev_hash
    )
    if check.problem:
        return check.problem if check.seq is None else f"seq {check.seq}: {check.problem}"
    if check.sha256 != archived.sha256:
        return "its SHA-256 is not the one written"
    if (check.last_seq, check.last_hash, check.rows) != (
        plan.last_seq,
        archived.last_hash,
        plan.rows,
    ):
        return "its rows or last hash are not the ones written"
    return None


# --- the run -------------------------------------------------------------------------


@dataclass
class Report:
    before: datetime.datetime
    archived: list[Archived]
    nothing: list[str]  # tables with nothing to archive
    dry_run: bool


def _lock(using: str, take: bool) -> bool:
    with connections[using].cursor() as cursor:
        fn = "pg_try_advisory_lock" if take else "pg_advisory_unlock"
        cursor.execute(
            sql.SQL("SELECT {}(('x' || left(md5(%s), 16))::bit(64)::bigint)").format(
                sql.Identifier(fn)
            ),
            [_LOCK],
        )
        return bool(cursor.fetchone()[0])


def run(
    tables: list[str],
    before: datetime.datetime,
    *,
    using: str = "default",
    storage: Storage | None = None,
    dry_run: bool = False,
    max_rows: int | None = None,
) -> Report:
    """Archive each table's prefix older than ``before``; raises :class:`ArchiveError`."""
    if not dry_run:
        check_owner(using)
    if not _lock(using, True):
        raise ArchiveError(_("another archive_audit run is in progress on this database"))
    report = Report(before, [], [], dry_run)
    try:
        plans = []
        for table in tables:
            plan = plan_table(table, before, using=using, max_rows=max_rows)
            if plan is None:
                report.nothing.append(table)
            else:
                plans.append(plan)
        try:
            for plan in plans:
                report.archived.append(export(plan, using=using, storage=storage, dry_run=dry_run))
            if not dry_run and plans:
                _commit(report, using)
        except ArchiveError as exc:
            if not dry_run and plans:
                _record(report, using, problem=str(exc))
            raise
        if not dry_run and not plans:
            _record(report, using)
    finally:
        _lock(using, False)
    return report


def _commit(report: Report, using: str) -> None:
    try:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            for archived in report.archived:
                plan = archived.plan
                ArchiveBoundary.objects.using(using).create(
                    table_name=plan.table,
                    first_seq=plan.first_seq,
                    last_seq=plan.last_seq,
                    row_count=plan.rows,
                    prev_hash=plan.prev_hash,
                    last_hash=archived.last_hash,
                    last_created_at=archived.last_created_at,
                    before=report.before,
                    object_name=archived.name,
                    object_sha256=archived.sha256,
                    object_bytes=archived.size,
                )
                cursor.execute(
                    sql.SQL("DELETE FROM {t} WHERE chain_seq BETWEEN %s AND %s").format(
                        t=sql.Identifier("audit", plan.table)
                    ),
                    [plan.first_seq, plan.last_seq],
                )
                if cursor.rowcount != plan.rows:
                    raise ArchiveError(
                        _("audit.%(table)s: %(deleted)s rows deleted, %(rows)s archived")
                        % {"table": plan.table, "deleted": cursor.rowcount, "rows": plan.rows}
                    )
            _record(report, using)
    except DatabaseError as exc:
        raise ArchiveError(
            _("the database refused the archive, nothing deleted: %(error)s")
            % {"error": str(exc).strip().splitlines()[0]}
        ) from exc


def _record(report: Report, using: str, problem: str | None = None) -> None:
    details = {
        "ok": problem is None,
        "problem": problem,
        "before": chain._time(report.before),
        "nothing": report.nothing,
        "tables": {
            a.plan.table: {
                "first_seq": a.plan.first_seq,
                "last_seq": a.plan.last_seq,
                "rows": a.plan.rows,
                "object": a.name,
                "sha256": a.sha256,
                "bytes": a.size,
            }
            for a in report.archived
        },
    }
    if problem is None:
        total = sum(a.plan.rows for a in report.archived)
        text = f"archived {total} audit rows" if total else "nothing to archive"
    else:
        text = "audit archive FAILED"
    with transaction.atomic(using=using):
        record_activity(
            action=ARCHIVE_ACTION, resource_type=ARCHIVE, object_repr=text, details=details
        )


# --- verification of the boundaries and the archived objects ---------------------------


def check_boundaries(*, using: str = "default") -> chain.Problem | None:
    """Consecutive boundaries of a table must link: seq and hash, from seq 1 and genesis."""
    for table in chain.TABLES:
        seq, prev = 0, chain.GENESIS
        rows = (
            ArchiveBoundary.objects.using(using)
            .filter(table_name=table)
            .order_by("first_seq")
            .values_list("first_seq", "last_seq", "prev_hash", "last_hash", "object_name")
        )
        for first, last, prev_hash, last_hash, name in rows:
            if first != seq + 1 or bytes(prev_hash) != prev:
                return chain.Problem(
                    table,
                    first,
                    None,
                    f"the archive boundary does not continue the previous one (seq {seq})",
                    archive=name,
                )
            seq, prev = last, bytes(last_hash)
    return None


def verify_archives(
    *, using: str = "default", storage: Storage | None = None
) -> tuple[chain.Problem | None, int]:
    """Read every archived object of every boundary; the first bad one, and how many
    were good."""
    storage = storage or default_storage
    good = 0
    for b in ArchiveBoundary.objects.using(using).order_by("table_name", "first_seq"):
        problem, _hash = _check_object(b, storage)
        if problem:
            return problem, good
        good += 1
    return None, good


def _check_object(
    b: ArchiveBoundary, storage: Storage, want_seq: int | None = None
) -> tuple[chain.Problem | None, str | None]:
    """The first problem of a boundary's object, and the row hash at ``want_seq``."""
    check = read_object(
        storage,
        b.object_name,
        table=b.table_name,
        first_seq=b.first_seq,
        prev_hash=bytes(b.prev_hash),
        want_seq=want_seq,
    )
    what = None
    seq = check.seq or b.first_seq
    if check.problem:
        what = check.problem
    elif check.sha256 != b.object_sha256:
        what = "its SHA-256 is not the boundary's: the object was altered or replaced"
    elif (check.last_seq, check.rows) != (b.last_seq, b.row_count):
        what = f"it ends at seq {check.last_seq} with {check.rows} rows, not as its boundary"
        seq = check.last_seq
    elif check.last_hash != bytes(b.last_hash):
        what = "its last hash is not the boundary's"
        seq = b.last_seq
    if what:
        return chain.Problem(b.table_name, seq, None, what, archive=b.object_name), None
    return None, check.hash_at


def compare_archived(
    table: str, seq: int, digest: str, *, using: str = "default", storage: Storage | None = None
) -> chain.Problem | None:
    """An anchored row that has been archived: compared in its archive (read and verified)."""
    b = (
        ArchiveBoundary.objects.using(using)
        .filter(table_name=table, first_seq__lte=seq, last_seq__gte=seq)
        .first()
    )
    if b is None:
        return chain.Problem(table, seq, None, "the anchored row is in no archive: rows removed")
    if seq == b.last_seq and bytes(b.last_hash).hex() != digest:
        return chain.Problem(
            table, seq, None, "the archive boundary's hash differs from the anchored hash"
        )
    problem, hash_at = _check_object(b, storage or default_storage, want_seq=seq)
    if problem:
        return problem
    if hash_at != digest:
        return chain.Problem(
            table,
            seq,
            None,
            "the archived row's hash differs from the anchored hash",
            archive=b.object_name,
        )
    return None
