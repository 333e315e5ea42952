"""Archiving: the table of archive boundaries, and the database's checks of it.

``manage.py archive_audit`` (``audit/archive.py``) exports a prefix of a table's chain
to storage, then, in one transaction, inserts an ``audit.archive_boundaries`` row and
deletes exactly those rows. The database decides whether that is allowed:

- the boundary's ``BEFORE INSERT`` trigger (``ENABLE ALWAYS``, not ``SECURITY DEFINER``:
  ``current_user`` is the caller) refuses anyone but the audited table's owner (the
  migrator; the application role holds INSERT on the schema's tables, and is refused
  here), sets who, when and the inserting transaction (``pg_current_xact_id()``), and
  checks that the boundary continues the previous one (first seq = previous last + 1,
  prev hash = previous last hash, or seq 1 from the genesis hash) and that its hashes,
  seqs and last time are those of the live rows at its ends;
- the append-only guard of the audit tables lets a DELETE through only for the owner
  and only in a transaction that inserted a boundary of that table
  (``0008_archive_delete_guard``), and an ``AFTER DELETE`` statement trigger with the
  deleted rows as a transition table (``0007`` and ``0008``) checks that they are
  exactly the boundary's range, that its end hashes match and that no row at or below
  its last seq remains: a chain prefix, removed once;
- the boundaries table is append-only itself (UPDATE, DELETE, TRUNCATE refused);
- the insert trigger of each chain continues from the latest boundary when every row
  of the table has been archived.

The SQL is fixed text (no values), so plain RunSQL strings are safe here.
"""

import django.db.models.functions.datetime
import portal.db.fields
import uuid
from django.db import migrations, models


GENESIS = r"'\x0000000000000000000000000000000000000000000000000000000000000000'::bytea"
TABLES = ("activity_logs", "security_events")

BOUNDARY_CHECK_SQL = f"""
CREATE FUNCTION "audit"."archive_boundary_check"() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    audited regclass;
    previous record;
    edge record;
    found_rows bigint;
BEGIN
    IF NEW.table_name NOT IN ('activity_logs', 'security_events') THEN
        RAISE EXCEPTION 'audit.archive_boundaries: % is not an archived audit table',
            NEW.table_name USING ERRCODE = 'check_violation';
    END IF;
    audited := format('audit.%I', NEW.table_name)::regclass;
    IF (SELECT relowner FROM pg_class WHERE oid = audited)
        IS DISTINCT FROM (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'audit.%: only the owner of the table archives it (current user: %)',
            NEW.table_name, current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run manage.py archive_audit as the migrator role.';
    END IF;
    NEW.archived_by := current_user;
    NEW.archived_at := clock_timestamp();
    NEW.archived_in := pg_current_xact_id()::text::bigint;
    SELECT last_seq, last_hash INTO previous FROM "audit"."archive_boundaries"
        WHERE table_name = NEW.table_name ORDER BY last_seq DESC LIMIT 1;
    IF NEW.first_seq <> coalesce(previous.last_seq, 0) + 1
        OR NEW.prev_hash <> coalesce(previous.last_hash, {GENESIS}) THEN
        RAISE EXCEPTION 'audit.%: an archive must continue the previous one (seq % after %)',
            NEW.table_name, NEW.first_seq, coalesce(previous.last_seq, 0)
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.row_count <> NEW.last_seq - NEW.first_seq + 1 THEN
        RAISE EXCEPTION 'audit.%: row_count % does not span seq % to %',
            NEW.table_name, NEW.row_count, NEW.first_seq, NEW.last_seq
            USING ERRCODE = 'check_violation';
    END IF;
    EXECUTE format('SELECT prev_hash FROM audit.%I WHERE chain_seq = $1', NEW.table_name)
        INTO edge USING NEW.first_seq;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows <> 1 OR edge.prev_hash IS DISTINCT FROM NEW.prev_hash THEN
        RAISE EXCEPTION 'audit.%: the row at seq % does not chain from the boundary''s hash',
            NEW.table_name, NEW.first_seq USING ERRCODE = 'check_violation';
    END IF;
    EXECUTE format('SELECT row_hash, created_at FROM audit.%I WHERE chain_seq = $1',
        NEW.table_name) INTO edge USING NEW.last_seq;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows <> 1 OR edge.row_hash IS DISTINCT FROM NEW.last_hash
        OR edge.created_at IS DISTINCT FROM NEW.last_created_at
        OR edge.created_at >= NEW.before THEN
        RAISE EXCEPTION 'audit.%: the row at seq % is not the boundary''s last row',
            NEW.table_name, NEW.last_seq USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION "audit"."archive_boundary_check"() FROM PUBLIC;
CREATE TRIGGER "archive_boundaries_check" BEFORE INSERT ON "audit"."archive_boundaries"
    FOR EACH ROW EXECUTE FUNCTION "audit"."archive_boundary_check"();
ALTER TABLE "audit"."archive_boundaries" ENABLE ALWAYS TRIGGER "archive_boundaries_check";
CREATE TRIGGER "archive_boundaries_no_rewrite" BEFORE UPDATE OR DELETE
    ON "audit"."archive_boundaries"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit"."refuse_audit_rewrite"();
CREATE TRIGGER "archive_boundaries_no_truncate" BEFORE TRUNCATE ON "audit"."archive_boundaries"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit"."refuse_audit_rewrite"();
ALTER TABLE "audit"."archive_boundaries" ENABLE ALWAYS TRIGGER "archive_boundaries_no_rewrite";
ALTER TABLE "audit"."archive_boundaries" ENABLE ALWAYS TRIGGER "archive_boundaries_no_truncate";
"""  # noqa: S608 - only the GENESIS constant is interpolated

BOUNDARY_DROP_SQL = """
DROP TRIGGER IF EXISTS "archive_boundaries_check" ON "audit"."archive_boundaries";
DROP TRIGGER IF EXISTS "archive_boundaries_no_rewrite" ON "audit"."archive_boundaries";
DROP TRIGGER IF EXISTS "archive_boundaries_no_truncate" ON "audit"."archive_boundaries";
DROP FUNCTION IF EXISTS "audit"."archive_boundary_check"();
"""

# Runs after a DELETE on an audit table that passed the append-only guard: the deleted
# rows (the transition table) must be exactly the range of this transaction's boundary.
DELETE_CHECK_SQL = """
CREATE FUNCTION "audit"."archive_delete_check"() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b record;
    n bigint;
    linked bigint;
    lo bigint;
    hi bigint;
    first_prev bytea;
    last_digest bytea;
    left_behind boolean;
BEGIN
    SELECT * INTO b FROM "audit"."archive_boundaries"
        WHERE table_name = TG_TABLE_NAME
          AND archived_in = pg_current_xact_id()::text::bigint;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Audit entries are evidence; they can be added, never changed or removed.';
    END IF;
    SELECT count(*), count(chain_seq), min(chain_seq), max(chain_seq)
        INTO n, linked, lo, hi FROM archived;
    SELECT prev_hash INTO first_prev FROM archived WHERE chain_seq = b.first_seq;
    SELECT row_hash INTO last_digest FROM archived WHERE chain_seq = b.last_seq;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE chain_seq <= $1)',
        TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO left_behind USING b.last_seq;
    IF n <> b.row_count OR linked <> n OR lo <> b.first_seq OR hi <> b.last_seq
        OR first_prev IS DISTINCT FROM b.prev_hash OR last_digest IS DISTINCT FROM b.last_hash
        OR left_behind THEN
        RAISE EXCEPTION 'audit.%: an archive removes exactly the chain prefix its boundary names (seq % to %), once',
            TG_TABLE_NAME, b.first_seq, b.last_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION "audit"."archive_delete_check"() FROM PUBLIC;
"""


# The f-strings below only ever receive the fixed table names of TABLES.
def chain_function_sql(table: str, *, after_archive: bool) -> str:
    """The chain trigger of 0004, continuing from the latest boundary when the table has
    no chained row left (``after_archive``); without it, 0004's body (the reverse)."""
    fallback = (
        f"""
    IF NOT FOUND THEN
        SELECT last_seq AS chain_seq, last_hash AS row_hash INTO head
            FROM "audit"."archive_boundaries" WHERE table_name = '{table}'
            ORDER BY last_seq DESC LIMIT 1;
    END IF;"""  # noqa: S608 - a fixed table name of TABLES
        if after_archive
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION "audit"."chain_{table}"() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head record;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit.{table}: rows are added in READ COMMITTED transactions only'
            USING ERRCODE = 'serialization_failure',
                  HINT = 'A snapshot older than the chain lock could fork the hash chain.';
    END IF;
    PERFORM pg_advisory_xact_lock(
        ('x' || left(md5('audit chain audit.{table}'), 16))::bit(64)::bigint);
    SELECT chain_seq, row_hash INTO head FROM "audit"."{table}"
        WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1;{fallback}
    NEW.created_at := clock_timestamp();
    NEW.chain_seq := coalesce(head.chain_seq, 0) + 1;
    NEW.prev_hash := coalesce(head.row_hash, {GENESIS});
    NEW.row_hash := sha256(NEW.prev_hash
        || convert_to("audit"."chain_canonical_{table}"(NEW), 'UTF8'));
    RETURN NEW;
END
$$;
"""  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_translatable_names"),
    ]

    operations = [
        migrations.CreateModel(
            name="ArchiveBoundary",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        db_default=portal.db.fields.GenRandomUUID(),
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("table_name", models.CharField(max_length=63, verbose_name="table")),
                ("first_seq", models.BigIntegerField(verbose_name="first chain sequence")),
                ("last_seq", models.BigIntegerField(verbose_name="last chain sequence")),
                ("row_count", models.BigIntegerField(verbose_name="rows")),
                ("prev_hash", models.BinaryField(verbose_name="previous hash")),
                ("last_hash", models.BinaryField(verbose_name="last hash")),
                ("last_created_at", models.DateTimeField(verbose_name="last row created at")),
                ("before", models.DateTimeField(verbose_name="archived rows older than")),
                ("object_name", models.CharField(max_length=1024, verbose_name="object")),
                ("object_sha256", models.CharField(max_length=64, verbose_name="object SHA-256")),
                ("object_bytes", models.BigIntegerField(verbose_name="object size")),
                (
                    "archived_by",
                    models.CharField(default="", max_length=63, verbose_name="database role"),
                ),
                (
                    "archived_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        verbose_name="archived at",
                    ),
                ),
                ("archived_in", models.BigIntegerField(default=0, verbose_name="transaction id")),
            ],
            options={
                "verbose_name": "archive boundary",
                "verbose_name_plural": "archive boundaries",
                "db_table": 'audit"."archive_boundaries',
                "ordering": ["table_name", "last_seq"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("table_name", "first_seq"), name="archive_boundaries_first_uniq"
                    ),
                    models.UniqueConstraint(
                        fields=("table_name", "last_seq"), name="archive_boundaries_last_uniq"
                    ),
                    models.UniqueConstraint(
                        fields=("table_name", "archived_in"), name="archive_boundaries_xact_uniq"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("table_name__in", ["activity_logs", "security_events"])
                        ),
                        name="archive_boundaries_table_check",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("first_seq__gte", 1), ("last_seq__gte", models.F("first_seq"))
                        ),
                        name="archive_boundaries_range_check",
                    ),
                ],
            },
        ),
        migrations.RunSQL(BOUNDARY_CHECK_SQL, reverse_sql=BOUNDARY_DROP_SQL),
        migrations.RunSQL(
            DELETE_CHECK_SQL,
            reverse_sql='DROP FUNCTION IF EXISTS "audit"."archive_delete_check"();',
        ),
        *(
            migrations.RunSQL(
                chain_function_sql(t, after_archive=True),
                reverse_sql=chain_function_sql(t, after_archive=False),
            )
            for t in TABLES
        ),
    ]
