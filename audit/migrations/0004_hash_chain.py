"""Each audit table becomes a hash chain, kept by PostgreSQL.

A ``BEFORE INSERT`` trigger on each table, whatever the client sent:
- takes a transaction-level advisory lock of the table (concurrent inserts queue, so
  two rows never claim the same predecessor; the lock is released at commit or
  rollback, so a rolled-back insert leaves no gap);
- sets ``created_at = clock_timestamp()`` (taken after the lock: seq order is time order);
- sets ``chain_seq`` = the last row's + 1 (gapless, starting at 1);
- sets ``prev_hash`` = the last row's ``row_hash`` (32 zero bytes for the first row) and
  ``row_hash = sha256(prev_hash || canonical text of the row)``.

The function is ``SECURITY DEFINER`` (it reads the chain head even for a role that may
only insert) with a pinned ``search_path``, and the trigger is ``ENABLE ALWAYS``. It
refuses transactions that are not READ COMMITTED: under a snapshot taken before the
lock was granted, the last row would not be visible and the chain would fork.

The canonical text is, in a fixed order, each column as text, ``N;`` for NULL or
``S<characters>:<text>;``; the table's name and the row's seq come first. ``audit/chain.py``
recomputes it in Python, independently of these functions.

Existing rows are chained here, in (created_at, id) order, in the migration's
transaction (the append-only trigger is disabled for that UPDATE only, and
``ALTER TABLE`` holds an exclusive lock until commit, so no other session sees it off).
The SQL is fixed text (no values), so plain RunSQL strings are safe here.
"""

from django.db import migrations, models

GENESIS = r"'\x0000000000000000000000000000000000000000000000000000000000000000'::bytea"

FIELD_SQL = """
CREATE FUNCTION "audit"."chain_field"(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN v IS NULL THEN 'N;' ELSE 'S' || char_length(v) || ':' || v || ';' END
$$;
CREATE FUNCTION "audit"."chain_time"(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
"""

# table -> (canonical text of NEW / of a row r, the append-only trigger of the table)
CANONICAL = {
    "activity_logs": """
        'audit.activity_logs;' || "audit"."chain_field"(r.chain_seq::text)
        || "audit"."chain_field"(r.id::text)
        || "audit"."chain_field"("audit"."chain_time"(r.created_at))
        || "audit"."chain_field"(r.user_id::text)
        || "audit"."chain_field"(r.actor_email)
        || "audit"."chain_field"(r.action)
        || "audit"."chain_field"(r.resource_type)
        || "audit"."chain_field"(r.resource_id)
        || "audit"."chain_field"(r.object_repr)
        || "audit"."chain_field"(r.details::text)
        || "audit"."chain_field"(host(r.ip_address))
        || "audit"."chain_field"(r.user_agent)
        || "audit"."chain_field"(r.request_id)
        || "audit"."chain_field"(r.client_trace_id)
    """,
    "security_events": """
        'audit.security_events;' || "audit"."chain_field"(r.chain_seq::text)
        || "audit"."chain_field"(r.id::text)
        || "audit"."chain_field"("audit"."chain_time"(r.created_at))
        || "audit"."chain_field"(r.event_type)
        || "audit"."chain_field"(r.user_id::text)
        || "audit"."chain_field"(r.email_attempted)
        || "audit"."chain_field"(host(r.ip_address))
        || "audit"."chain_field"(r.user_agent)
        || "audit"."chain_field"(r.details::text)
        || "audit"."chain_field"(r.client_trace_id)
    """,
}
REWRITE_TRIGGER = {
    "activity_logs": "activity_logs_no_rewrite",
    "security_events": "security_events_no_rewrite",
}


def canonical_function_sql(table: str) -> str:
    return f"""
CREATE FUNCTION "audit"."chain_canonical_{table}"(r "audit"."{table}") RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT {CANONICAL[table]}
$$;
"""


# The f-strings below only ever receive the fixed table names of CANONICAL.
def trigger_function_sql(table: str) -> str:
    return f"""
CREATE FUNCTION "audit"."chain_{table}"() RETURNS trigger
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
        WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1;
    NEW.created_at := clock_timestamp();
    NEW.chain_seq := coalesce(head.chain_seq, 0) + 1;
    NEW.prev_hash := coalesce(head.row_hash, {GENESIS});
    NEW.row_hash := sha256(NEW.prev_hash
        || convert_to("audit"."chain_canonical_{table}"(NEW), 'UTF8'));
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION "audit"."chain_{table}"() FROM PUBLIC;
CREATE TRIGGER "{table}_chain" BEFORE INSERT ON "audit"."{table}"
    FOR EACH ROW EXECUTE FUNCTION "audit"."chain_{table}"();
ALTER TABLE "audit"."{table}" ENABLE ALWAYS TRIGGER "{table}_chain";
"""  # noqa: S608


def backfill_sql(table: str) -> str:
    # One pass in (created_at, id) order into a temporary table, then one UPDATE.
    return f"""
CREATE TEMPORARY TABLE "chain_backfill_{table}"
    (id uuid PRIMARY KEY, chain_seq bigint, prev_hash bytea, row_hash bytea) ON COMMIT DROP;
DO $$
DECLARE
    r "audit"."{table}";
    n bigint := 0;
    prev bytea := {GENESIS};
BEGIN
    FOR r IN SELECT * FROM "audit"."{table}" ORDER BY created_at, id LOOP
        n := n + 1;
        r.chain_seq := n;
        r.prev_hash := prev;
        r.row_hash := sha256(prev || convert_to("audit"."chain_canonical_{table}"(r), 'UTF8'));
        INSERT INTO "chain_backfill_{table}" VALUES (r.id, n, r.prev_hash, r.row_hash);
        prev := r.row_hash;
    END LOOP;
END
$$;
ALTER TABLE "audit"."{table}" DISABLE TRIGGER "{REWRITE_TRIGGER[table]}";
UPDATE "audit"."{table}" t SET chain_seq = b.chain_seq, prev_hash = b.prev_hash,
    row_hash = b.row_hash
    FROM "chain_backfill_{table}" b WHERE b.id = t.id;
ALTER TABLE "audit"."{table}" ENABLE ALWAYS TRIGGER "{REWRITE_TRIGGER[table]}";
DROP TABLE "chain_backfill_{table}";
"""  # noqa: S608


def drop_sql(table: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS "{table}_chain" ON "audit"."{table}";
DROP FUNCTION IF EXISTS "audit"."chain_{table}"();
DROP FUNCTION IF EXISTS "audit"."chain_canonical_{table}"("audit"."{table}");
"""


def chain_fields(model: str) -> list:
    return [
        migrations.AddField(
            model_name=model,
            name="chain_seq",
            field=models.BigIntegerField(
                editable=False, null=True, unique=True, verbose_name="chain sequence"
            ),
        ),
        migrations.AddField(
            model_name=model,
            name="prev_hash",
            field=models.BinaryField(editable=False, null=True, verbose_name="previous hash"),
        ),
        migrations.AddField(
            model_name=model,
            name="row_hash",
            field=models.BinaryField(editable=False, null=True, verbose_name="row hash"),
        ),
    ]


LINT_EXEMPT = {
    "one-table-lock-per-transaction": "both audit tables are chained in one deploy: the "
    "trigger of each must exist before the portal writes its next row; both are written "
    "only by the portal, and the lock-safe executor bounds each lock wait with retries",
    "disallowed-unique-constraint": "chain_seq is created and backfilled in the same "
    "transaction, under the lock the backfill takes anyway; its unique index must exist "
    "before the trigger numbers new rows",
    "ban-drop-table": "the dropped tables are the migration's own temporary backfill "
    "tables (chain_backfill_<table>), which no client uses",
}


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_client_trace_id"),
    ]

    operations = [
        *chain_fields("activitylog"),
        *chain_fields("securityevent"),
        migrations.RunSQL(
            FIELD_SQL,
            reverse_sql='DROP FUNCTION IF EXISTS "audit"."chain_field"(text);'
            'DROP FUNCTION IF EXISTS "audit"."chain_time"(timestamptz);',
        ),
        *(
            migrations.RunSQL(
                canonical_function_sql(t) + backfill_sql(t) + trigger_function_sql(t),
                reverse_sql=drop_sql(t),
            )
            for t in CANONICAL
        ),
    ]
