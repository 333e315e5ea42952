"""Demo data for the portal: a small linked base seed, and set-based bulk top-ups.

Two entry points, both idempotent:

``seed_base()``
    A few thousand realistic, linked rows in every table, written with the ORM in one
    transaction. Randomness comes from ``random.Random(42)`` and primary keys from
    ``uuid5`` over ``DEMO_NAMESPACE``, so a second run finds every planned row already
    there and inserts nothing. Rows keyed by a database identity are matched otherwise:
    execution history per (deterministic) session, sandbox runs as a whole (any run on a
    demo session), tool-cache entries on (tool name, arguments), OAuth accounts on
    (provider, account id); analytics user sessions go per user, all or nothing.

``scale_up()``
    Tops the gateway's tables up to a target row count with
    ``INSERT ... SELECT ... FROM generate_series(...)``, one committed batch per
    statement. Text is assembled in SQL from the same fragments the base seed uses,
    picked by a hash of the series number; sessions get ids
    ``md5('seed-demo-scale:' || n)::uuid`` and every execution and sandbox run is dated
    after the session it belongs to. Existing rows count towards the targets.

The statistics snapshot tables (analytics) get two weeks of made-up history only while
they hold nothing for the current database, so it never interleaves with real captures.

The SQL below is static: values (including the fragment arrays) always travel as
parameters, and table names are the gateway's fixed contract, never user input.
The audit tables are append-only, so this module only ever INSERTs into them (plain
INSERTs of the rows not there yet, never ON CONFLICT or UPDATE).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import Company, OAuthAccount, SubscriptionPlan, User
from analytics.models import SystemMetric, UserSession
from audit.models import ActivityLog, SecurityEvent
from core.models import (
    Automation,
    CodexSession,
    ExecutionHistory,
    McpCache,
    Project,
    SandboxExecution,
)
from diagnostics.models import QueryStatSnapshot, StatsSnapshot, TableSizeSnapshot

# Fixed forever: changing it would make a second run insert a second copy.
DEMO_NAMESPACE = uuid.UUID("6f0d3c52-2c1e-4f4b-9a57-0d1e5e3a9b21")
SEED = 42
BASE_SESSIONS = 400
SCALE_SESSION_PREFIX = "seed-demo-scale:"
DEFAULT_BATCH_SIZE = 500_000
PASSWORD_ENV = "DEMO_USER_PASSWORD"  # noqa: S105 (the variable's name, not a password)

# ---------------------------------------------------------------------------------
# Fragments shared by the base seed (Python) and the bulk top-up (SQL arrays).
# Placeholders: {func} {file} {module} {table} {n} {tests}.
# ---------------------------------------------------------------------------------

FUNCS = [
    "fetch_invoice",
    "sync_customers",
    "parse_webhook",
    "build_monthly_report",
    "upload_artifact",
    "charge_card",
    "refresh_access_token",
    "send_daily_digest",
    "geocode_address",
    "import_orders_csv",
    "compute_eta",
    "reconcile_payments",
    "enqueue_export",
    "render_invoice_pdf",
]
FILES = [
    "billing/invoices.py",
    "api/webhooks.py",
    "services/sync.py",
    "workers/exports.py",
    "integrations/stripe_client.py",
    "reports/monthly.py",
    "core/geo.py",
    "etl/load_orders.py",
    "auth/tokens.py",
    "notifications/digest.py",
]
TABLES = [
    "invoices",
    "customers",
    "payments",
    "shipments",
    "events",
    "subscriptions",
    "orders",
    "line_items",
]

PROMPT_PREFIXES = [
    "",
    "",
    "",
    "Quick one: ",
    "Context: Python 3.12, PostgreSQL 16, Django 5.2. ",
    "Follow-up to your last change. ",
    "Same repo as before. ",
    "From the on-call channel: ",
]
PROMPT_SUFFIXES = [
    "",
    "",
    "",
    " Keep the public API unchanged.",
    " Don't touch the migrations folder.",
    " Run the tests when you're done.",
    " Keep the diff small, please.",
    " Explain the trade-offs briefly.",
]
RESPONSE_INTROS = [
    "",
    "",
    "Done. ",
    "Sure. ",
    "Good catch, here's what I found. ",
    "I read {file} first, then the call sites. ",
]
RESPONSE_OUTROS = [
    "",
    "\n\nI ran `pytest -q`: {tests} passed, 0 failed.",
    "\n\nI ran `ruff check .` and the tests that touch {file}; all green.",
    "\n\nWant me to open a PR with this?",
    "\n\nNote: the sandbox has no network, so I ran the unit tests only.",
]

# (prompt, response) pairs; index i of one belongs to index i of the other.
EXCHANGES: list[tuple[str, str]] = [
    (
        "Add a retry with exponential backoff to {func}() in {file}. Retry on 429 and 5xx "
        "only, at most {n} attempts, and respect the Retry-After header.",
        """I wrapped the HTTP call in a small helper instead of adding sleeps inside {func}():

```python
RETRYABLE = {429, 500, 502, 503, 504}


def _with_backoff(send, *, attempts: int = {n}, base: float = 0.5, cap: float = 30.0):
    for attempt in range(1, attempts + 1):
        response = send()
        if response.status_code not in RETRYABLE or attempt == attempts:
            return response
        retry_after = response.headers.get("Retry-After")
        delay = float(retry_after) if retry_after else min(cap, base * 2**attempt)
        time.sleep(delay + random.uniform(0, delay / 10))
    raise AssertionError("unreachable")
```

`{func}()` now calls `_with_backoff(lambda: session.get(url, timeout=10))`. Errors that \
are not retryable (400, 401, 404) still raise at once, so callers see the same \
exceptions as before.""",
    ),
    (
        "{func}() got slow: its query on {table} takes about {n} s since the table passed "
        "40M rows. Find out why and propose an index; show the plan before and after.",
        """The plan is a sequential scan: the filter is `customer_id` plus a range on \
`created_at`, and no index serves both.

```sql
EXPLAIN (ANALYZE, BUFFERS)
SELECT * FROM {table}
WHERE customer_id = $1 AND created_at >= now() - interval '30 days'
ORDER BY created_at DESC
LIMIT 50;

-- before
Limit  (cost=0.00..812345.10 rows=50 width=212) (actual time=4211.8..4211.9 rows=50 loops=1)
  ->  Seq Scan on {table}  (cost=0.00..1843210.00 rows=113 width=212)
        Filter: ((customer_id = 4821) AND (created_at >= (now() - '30 days'::interval)))
        Rows Removed by Filter: 40211934
```

```sql
CREATE INDEX CONCURRENTLY {table}_customer_created_idx
    ON {table} (customer_id, created_at DESC);
```

After `ANALYZE {table}` the same query is an index scan reading 6 buffers: 0.9 ms \
instead of 4.2 s. `CONCURRENTLY` does not block writes, but it cannot run inside a \
transaction, so it goes in its own migration with `atomic = False`.""",
    ),
    (
        "Write pytest tests for {func}() covering empty input, a malformed payload and the "
        "happy path. Use fixtures, no network.",
        """Three tests, one per case. The HTTP layer is replaced at the client boundary, \
so nothing leaves the machine:

```python
import pytest

from {module} import {func}


@pytest.fixture
def payload():
    return {"id": "evt_1042", "type": "invoice.paid", "data": {"amount": 4200}}


def test_it_returns_nothing_for_empty_input():
    assert {func}([]) == []


def test_it_rejects_a_malformed_payload(payload):
    del payload["data"]
    with pytest.raises(ValueError, match="data"):
        {func}([payload])


def test_it_processes_a_valid_payload(payload, fake_client):
    result = {func}([payload])
    assert result[0].amount == 4200
    assert fake_client.calls == 1
```

`fake_client` lives in `conftest.py` and records calls instead of sending them.""",
    ),
    (
        "Refactor {func}() in {file}: it's 180 lines. Split it into smaller functions, keep "
        "the behaviour identical and add type hints.",
        """I split it along the three things it does (load, validate, persist). The diff:

```diff
--- a/{file}
+++ b/{file}
@@ -41,38 +41,22 @@
-def {func}(batch, dry_run=False):
-    rows = []
-    for item in batch:
-        if not item.get("id"):
-            log.warning("skipping item without id")
-            continue
-        row = normalise(item)
-        rows.append(row)
+def {func}(batch: list[dict], dry_run: bool = False) -> int:
+    rows = [_normalise(item) for item in batch if _is_valid(item)]
+    if dry_run:
+        return len(rows)
+    return _persist(rows)
+
+
+def _is_valid(item: dict) -> bool:
+    if not item.get("id"):
+        log.warning("skipping item without id")
+        return False
+    return True
```

Behaviour is unchanged: the existing tests pass without edits, and I added one for \
`dry_run=True`, which had no coverage.""",
    ),
    (
        "Tests pass locally but fail in CI with\n\n```\nFAILED tests/test_{table}.py::"
        "test_{func} - psycopg.errors.UniqueViolation: duplicate key value violates unique "
        'constraint "{table}_pkey"\n```\nWhat is going on?',
        """CI runs the suite with `pytest -n {n}`, and two workers share one database. \
The test inserts a row with a hard-coded primary key:

```python
{table}_row = {table}.objects.create(id=1, status="open")  # collides across workers
```

Locally you run one worker, so it never collides. Let the database assign the key, or \
give each worker its own database:

```python
# conftest.py
@pytest.fixture(scope="session")
def django_db_modify_db_settings(worker_id):
    settings.DATABASES["default"]["TEST"]["NAME"] = f"test_app_{worker_id}"
```

I changed the test to use the returned `id` instead of `1`; it passed 20 runs in a row \
with `-n {n}`.""",
    ),
    (
        "Write a SQL query for the top 10 customers by revenue from {table} over the last "
        "90 days, with month-over-month growth.",
        """Monthly revenue per customer first, then `lag()` for the previous month:

```sql
WITH monthly AS (
    SELECT customer_id,
           date_trunc('month', created_at) AS month,
           sum(amount_cents) / 100.0 AS revenue
    FROM {table}
    WHERE created_at >= now() - interval '90 days'
    GROUP BY 1, 2
), ranked AS (
    SELECT customer_id, month, revenue,
           lag(revenue) OVER (PARTITION BY customer_id ORDER BY month) AS previous
    FROM monthly
)
SELECT c.name, r.month, r.revenue,
       round(100.0 * (r.revenue - r.previous) / nullif(r.previous, 0), 1) AS growth_pct
FROM ranked r
JOIN customers c ON c.id = r.customer_id
WHERE r.month = date_trunc('month', now())
ORDER BY r.revenue DESC
LIMIT 10;
```

`nullif` keeps customers without a previous month from dividing by zero; their growth \
shows as NULL.""",
    ),
    (
        "Migrate {func}() from requests to httpx with one shared AsyncClient and a 10 s timeout.",
        """One client per process, created at startup and closed on shutdown:

```python
import httpx

_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=httpx.Timeout(10.0), http2=True)
    return _client


async def {func}(url: str) -> dict:
    response = await client().get(url)
    response.raise_for_status()
    return response.json()
```

`requests.exceptions.Timeout` becomes `httpx.TimeoutException`; I updated the two \
`except` clauses in {file} that caught it.""",
    ),
    (
        "Add structured logging to {func}(): request id, user id and duration. No PII in the logs.",
        """I log one line per call with `extra=` fields, which the JSON formatter already \
emits as keys:

```python
start = time.perf_counter()
try:
    return _do_{func}(request)
finally:
    log.info(
        "{func} finished",
        extra={
            "request_id": request.headers.get("X-Request-ID"),
            "user_id": request.user.pk,
            "duration_ms": round((time.perf_counter() - start) * 1000, 1),
        },
    )
```

Email addresses and names are not logged; the user is identified by id only.""",
    ),
    (
        "Review this change to {file} and point out bugs:\n\n```diff\n"
        "-    for row in rows:\n-        total += row.amount\n"
        "+    total = sum(r.amount for r in rows if r.status != 'void')\n"
        '+    cache.set(f"total:{customer}", total)\n```',
        """Three problems:

1. `total` used to start from the running value passed in; now it is overwritten, so \
the carry-over from the previous page is lost.
2. The cache key has no tenant prefix: two companies with the same customer id share \
one entry. Use `f"total:{company_id}:{customer}"`.
3. The cache entry never expires and nothing invalidates it when a row is voided later.

```python
total += sum(r.amount for r in rows if r.status != "void")
cache.set(f"total:{company_id}:{customer}", total, timeout=300)
```""",
    ),
    (
        "Create a Django migration that adds a nullable `region` column to {table} and "
        "backfills it in batches of 10k rows.",
        """Schema change and backfill in separate migrations, so the `ALTER TABLE` \
holds its lock only for an instant:

```python
def backfill(apps, schema_editor):
    Model = apps.get_model("billing", "{table}")
    last = 0
    while True:
        ids = list(
            Model.objects.filter(pk__gt=last, region__isnull=True)
            .order_by("pk").values_list("pk", flat=True)[:10_000]
        )
        if not ids:
            break
        Model.objects.filter(pk__in=ids).update(region=Subquery(region_of_customer))
        last = ids[-1]


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("billing", "0042_{table}_region")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
```

`atomic = False` commits each batch, so a failure halfway keeps the progress made.""",
    ),
    (
        "The {table} table is at {n}0 GB and most of it is dead tuples. How do I reclaim "
        "the space without locking it for long?",
        """First confirm it is bloat and not live data:

```sql
SELECT relname, n_live_tup, n_dead_tup,
       pg_size_pretty(pg_total_relation_size(relid)) AS total_size,
       last_autovacuum
FROM pg_stat_user_tables
WHERE relname = '{table}';
```

`VACUUM FULL` would rewrite the table under an ACCESS EXCLUSIVE lock for the whole \
run. `pg_repack` rebuilds it online and holds the strong lock only at the end:

```
pg_repack --table={table} --jobs=2 --wait-timeout=60 appdb
```

Then lower `autovacuum_vacuum_scale_factor` on this table (for example 0.02) so it \
does not bloat again.""",
    ),
    (
        "Port {func}() from {file} to TypeScript for the edge worker; keep the same error "
        "semantics.",
        """Same contract: it throws `ValidationError` on bad input and returns `null` \
when the upstream answers 404.

```typescript
export class ValidationError extends Error {}

export async function {func}(id: string, env: Env): Promise<Invoice | null> {
  if (!/^[a-z0-9_]{6,64}$/.test(id)) {
    throw new ValidationError(`invalid id: ${id}`);
  }
  const res = await fetch(`${env.API_URL}/v1/items/${id}`, {
    headers: { Authorization: `Bearer ${env.API_TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`upstream ${res.status}`);
  return (await res.json()) as Invoice;
}
```""",
    ),
    (
        "Two workers sometimes process the same job in {func}(). Fix the race.",
        """The worker reads a pending job and marks it running in two statements, so \
two workers can read the same row in between. Claim it atomically instead:

```sql
UPDATE jobs SET status = 'running', started_at = now(), worker = $1
WHERE id = (
    SELECT id FROM jobs
    WHERE status = 'pending'
    ORDER BY created_at
    FOR UPDATE SKIP LOCKED
    LIMIT 1
)
RETURNING id, payload;
```

`SKIP LOCKED` lets the other worker move on to the next job instead of waiting. I \
replaced the two ORM calls in {func}() with this statement.""",
    ),
    (
        "Make the Docker image for the service behind {func}() smaller; it is {n}00 MB. "
        "Multi-stage build please.",
        """Build wheels in one stage, copy only them into a slim runtime:

```dockerfile
FROM python:3.12-slim AS build
WORKDIR /src
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

FROM python:3.12-slim
RUN useradd --create-home app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY --chown=app . /app
USER app
WORKDIR /app
CMD ["gunicorn", "app.wsgi", "--workers", "3", "--bind", "0.0.0.0:8080"]
```

The image is 168 MB now; the compilers and headers stay in the build stage.""",
    ),
    (
        "Explain what {file} does, in five bullet points, for a new teammate.",
        """- `{func}()` is the entry point; the scheduler calls it every 15 minutes.
- It reads new rows from `{table}` since the last checkpoint kept in Redis.
- Each row is validated and normalised; rejects go to `{table}_rejects` with a reason.
- Valid rows are sent upstream in batches of 500, with retries on 5xx.
- Metrics (`rows_processed`, `rows_rejected`, `duration_ms`) go to Cloud Monitoring; \
the alert fires when `rows_rejected` exceeds 1% for an hour.""",
    ),
]

MODELS_WEIGHTED = [
    ("gpt-5-codex", 34),
    ("gpt-5", 18),
    ("claude-sonnet-4.5", 18),
    ("o4-mini", 14),
    ("gemini-2.5-pro", 10),
    ("gpt-4.1", 6),
]
FINAL_STATUSES_WEIGHTED = [("completed", 74), ("failed", 10), ("cancelled", 8), ("timeout", 8)]
CLIENT_VERSIONS = ["0.42.0", "0.44.1", "0.45.0", "0.46.0", "0.47.2"]
CLIENT_OS = ["darwin-arm64", "linux-x86_64", "windows-x86_64", "linux-aarch64"]
SANDBOX_IMAGES = [
    "ghcr.io/openai/codex-universal:2025-09-30",
    "ghcr.io/openai/codex-universal:2025-10-21",
    "europe-west1-docker.pkg.dev/agent-gateway/sandboxes/python312:1.8.0",
    "europe-west1-docker.pkg.dev/agent-gateway/sandboxes/node22:1.4.2",
]
BRANCHES = [
    "main",
    "main",
    "feat/retry-invoices",
    "fix/webhook-signature",
    "chore/bump-django-5.2",
    "feat/eta-model-v2",
    "fix/n-plus-one-orders",
    "refactor/split-sync-service",
]
SERVICE_CALLERS = ["svc_ci-github-actions", "svc_nightly-refactor-bot"]
# Relative weights of the hour of day (UTC) at which people work with the agent.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 13, 16, 16, 14, 10, 14, 16, 15, 13, 10, 7, 5, 4, 3, 2, 1]

SANDBOX_QUERIES: list[tuple[str, list[str]]] = [
    (
        "SELECT status, count(*) AS n FROM invoices GROUP BY status ORDER BY n DESC;",
        ["status", "n"],
    ),
    (
        "SELECT date_trunc('day', created_at)::date AS day, sum(amount_cents) / 100.0 AS revenue\n"
        "FROM payments WHERE created_at >= now() - interval '7 days'\nGROUP BY 1 ORDER BY 1;",
        ["day", "revenue"],
    ),
    (
        "SELECT id, email, created_at FROM customers ORDER BY created_at DESC LIMIT 5;",
        ["id", "email", "created_at"],
    ),
    (
        "SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables\n"
        "ORDER BY n_dead_tup DESC LIMIT 5;",
        ["relname", "n_live_tup", "n_dead_tup"],
    ),
    (
        "SELECT country, count(*) AS pending FROM shipments WHERE delivered_at IS NULL\n"
        "GROUP BY country ORDER BY pending DESC LIMIT 10;",
        ["country", "pending"],
    ),
    (
        "SELECT plan, count(*) AS subscribers, round(avg(mrr_cents) / 100.0, 2) AS avg_mrr\n"
        "FROM subscriptions WHERE canceled_at IS NULL GROUP BY plan;",
        ["plan", "subscribers", "avg_mrr"],
    ),
    (
        "SELECT o.id, o.total_cents, count(li.id) AS items\nFROM orders o JOIN line_items li "
        "ON li.order_id = o.id\nGROUP BY o.id ORDER BY o.total_cents DESC LIMIT 5;",
        ["id", "total_cents", "items"],
    ),
    ("SELECT pg_size_pretty(pg_total_relation_size('events')) AS size;", ["size"]),
]
SANDBOX_ERRORS: list[tuple[str, str]] = [
    (
        "SELECT * FROM invoice_lines WHERE invoice_id = 42;",
        'ERROR:  relation "invoice_lines" does not exist\n'
        "LINE 1: SELECT * FROM invoice_lines WHERE invoice_id = 42;\n"
        "                      ^",
    ),
    (
        "SELECT customer_id, sum(amount_cents) FROM payments GROUP BY customer;",
        'ERROR:  column "customer" does not exist\n'
        "LINE 1: ...T customer_id, sum(amount_cents) FROM payments GROUP BY customer;\n"
        "                                                                   ^\n"
        'HINT:  Perhaps you meant to reference the column "payments.customer_id".',
    ),
    (
        "SELECT id, total_cents FORM orders LIMIT 10;",
        'ERROR:  syntax error at or near "FORM"\n'
        "LINE 1: SELECT id, total_cents FORM orders LIMIT 10;\n"
        "                               ^",
    ),
    (
        "UPDATE subscriptions SET plan = 'pro' WHERE id = 7;",
        "ERROR:  cannot execute UPDATE in a read-only transaction",
    ),
    (
        "SELECT * FROM events ORDER BY payload->>'ts';",
        "ERROR:  canceling statement due to statement timeout",
    ),
    (
        "SELECT email, password FROM auth.users LIMIT 5;",
        "ERROR:  permission denied for schema auth\n"
        "LINE 1: SELECT email, password FROM auth.users LIMIT 5;\n"
        "                                    ^",
    ),
    (
        "SELECT sum(amount_cents) / count(*) FROM refunds WHERE created_at > now();",
        "ERROR:  division by zero",
    ),
    (
        "SELECT id FROM orders WHERE created_at > '2025-13-01';",
        'ERROR:  date/time field value out of range: "2025-13-01"\n'
        "LINE 1: SELECT id FROM orders WHERE created_at > '2025-13-01';\n"
        "                                                 ^\n"
        'HINT:  Perhaps you need a different "datestyle" setting.',
    ),
]

SEARCH_TERMS = [
    "def fetch_invoice",
    "RETRYABLE_STATUS",
    "select_for_update",
    "STRIPE_WEBHOOK_SECRET",
    "class SyncService",
    "TODO(perf)",
    "raise ValidationError",
    "httpx.AsyncClient",
]
WEB_URLS = [
    "https://docs.python.org/3/library/asyncio-task.html",
    "https://www.postgresql.org/docs/16/sql-createindex.html",
    "https://docs.djangoproject.com/en/5.2/ref/models/querysets/",
    "https://www.python-httpx.org/advanced/timeouts/",
    "https://docs.stripe.com/webhooks/signature",
    "https://cloud.google.com/sql/docs/postgres/flags",
]
MCP_TOOLS = [
    "github.search_code",
    "github.get_file_contents",
    "github.list_pull_requests",
    "postgres.query",
    "postgres.describe_table",
    "filesystem.read_file",
    "filesystem.list_directory",
    "web.fetch",
    "web.search",
    "jira.get_issue",
]
# Seconds a tool's result stays cached (varied per entry among these).
CACHE_TTLS = [300, 900, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600]

COMPANIES = [
    # name, domain, plan, max_users, active, users
    ("Northwind Logistics", "northwind-logistics.com", SubscriptionPlan.ENTERPRISE, 250, True, 14),
    ("Kestrel Health", "kestrelhealth.com", SubscriptionPlan.ENTERPRISE, 500, True, 11),
    ("Bluefin Analytics", "bluefin-analytics.io", SubscriptionPlan.PRO, 50, True, 9),
    ("Tidewater Energy", "tidewater-energy.com", SubscriptionPlan.PRO, 60, True, 8),
    ("Lumen Legal", "lumenlegal.co.uk", SubscriptionPlan.PRO, 40, True, 6),
    ("Copperleaf Retail", "copperleaf.shop", SubscriptionPlan.STARTER, 15, True, 5),
    ("Orbital Robotics", "orbitalrobotics.ai", SubscriptionPlan.STARTER, 10, True, 4),
    ("Fernhill Studio", "fernhill.studio", SubscriptionPlan.FREE, 5, False, 3),
]
FIRST_NAMES = [
    "Amara", "Lucas", "Sofia", "Mateo", "Priya", "Jonas", "Chloe", "Kenji", "Elena", "Omar",
    "Hannah", "Diego", "Aisha", "Felix", "Mei", "Rafael", "Ingrid", "Tomasz", "Leila", "Noah",
    "Zara", "Henrik", "Camille", "Arjun", "Freya", "Mohammed", "Julia", "Sven", "Yara", "Liam",
    "Nadia", "Marco", "Emeka", "Clara", "Ravi", "Astrid", "Hugo", "Fatima", "Daniel", "Anya",
]  # fmt: skip
LAST_NAMES = [
    "Okafor", "Schneider", "Rossi", "Fernandez", "Sharma", "Berg", "Dubois", "Tanaka",
    "Popescu", "Haddad", "Müller", "Garcia", "Bello", "Wagner", "Chen", "Costa", "Larsen",
    "Kowalski", "Nasser", "Brown", "Ahmed", "Nilsson", "Laurent", "Iyer", "Jensen", "Khan",
    "Novak", "Lindqvist", "Mansour", "Murphy", "Petrova", "Bianchi", "Eze", "Moreau", "Patel",
]  # fmt: skip
DEPARTMENTS_WEIGHTED = [
    ("Engineering", 34),
    ("Data", 12),
    ("Platform", 10),
    ("Product", 8),
    ("Marketing", 8),
    ("Sales", 7),
    ("Customer Support", 8),
    ("Finance", 5),
    ("Security", 5),
    ("", 3),
]
TECH_DEPARTMENTS = {"Engineering", "Data", "Platform", "Security"}
PROJECTS = [
    ("billing-service", "Invoicing, dunning and the Stripe integration."),
    ("customer-sync", "Nightly sync of CRM accounts into the warehouse."),
    ("eta-predictor", "Delivery-time model and its serving API."),
    ("webhooks-gateway", "Receives and verifies partner webhooks."),
    ("reporting-pipeline", "Monthly finance reports, exported as PDF."),
    ("mobile-backend", "API behind the iOS and Android apps."),
    ("data-warehouse", "dbt models over BigQuery."),
    ("onboarding-flows", "Email and chat onboarding for trial users."),
    ("infra-terraform", "Terraform for GCP projects and Cloud SQL."),
    ("search-api", "Product search over Elasticsearch."),
    ("claims-intake", "Insurance claim forms and document OCR."),
    ("patient-portal", "Appointments and lab results for patients."),
]
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/141.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/141.0.0.0 Safari/537.36 Edg/141.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/26.0 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1",
    "codex-cli/0.46.0 (Mac OS 15.6.1; arm64) ghostty/1.2.0",
    "codex-cli/0.45.0 (Ubuntu 24.04; x86_64) vscode/1.105.1",
]
METRICS = [
    # name, base, amplitude over the day, noise, tags
    ("gateway.requests_per_minute", 40.0, 320.0, 0.12, {"service": "agent-gateway"}),
    ("gateway.p95_latency_ms", 850.0, 900.0, 0.15, {"service": "agent-gateway"}),
    ("gateway.error_rate_pct", 0.3, 0.9, 0.4, {"service": "agent-gateway"}),
    ("gateway.active_sessions", 4.0, 120.0, 0.1, {"service": "agent-gateway"}),
    ("cloudsql.cpu_utilization", 0.08, 0.55, 0.1, {"instance": "portal-db-primary"}),
    ("cloudsql.connections", 18.0, 70.0, 0.1, {"instance": "portal-db-primary"}),
    ("cloudrun.instance_count", 1.0, 7.0, 0.2, {"service": "agent-gateway"}),
    ("mcp.cache_hit_ratio", 0.62, 0.2, 0.05, {"service": "mcp-proxy"}),
]


# ---------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableResult:
    """What one step did to one table."""

    table: str
    created: int
    total: int | None = None

    @property
    def already_done(self) -> bool:
        return self.created == 0


@dataclass
class BaseSeedReport:
    tables: list[TableResult] = field(default_factory=list)
    staff_emails: list[str] = field(default_factory=list)
    # Set only when this run created the staff users and generated their password.
    generated_password: str | None = None


ProgressCallback = Callable[[str, int, int], None]


class SeedError(Exception):
    """The database holds something the demo data cannot be linked with."""


# ---------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------


def demo_uuid(kind: str, key: object) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, f"{kind}:{key}")


def table_label(model: type[models.Model]) -> str:
    return model._meta.db_table.replace('"."', ".")


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders; other braces (code in the text) stay as they are."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[w for _, w in pairs])[0]


def _expand(pairs: Sequence[tuple[str, int]]) -> list[str]:
    """A list where each value appears as often as its weight (for SQL picks by modulo)."""
    return [value for value, weight in pairs for _ in range(weight)]


def _time_of_day(rng: random.Random, day: datetime) -> datetime:
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))


def _moment(rng: random.Random, now: datetime, max_days: int, *, bias: float = 1.0) -> datetime:
    """A past moment within ``max_days``, recent days likelier when ``bias`` > 1."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = int(max_days * rng.random() ** bias)
    moment = _time_of_day(rng, midnight - timedelta(days=days))
    return moment if moment <= now else moment - timedelta(days=1)


def _ip(rng: random.Random, v6_share: float = 0.15) -> str:
    # Documentation and private ranges only: demo data must not name real hosts.
    if rng.random() < v6_share:
        groups = ":".join(f"{rng.randrange(0x10000):x}" for _ in range(4))
        return f"2001:db8:{rng.randrange(0x10000):x}::{groups}"
    net = rng.choice(["203.0.113", "198.51.100", "192.0.2", "10.20.4", "172.16.8"])
    return f"{net}.{rng.randrange(1, 255)}"


@contextmanager
def keep_given_timestamps(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let ``bulk_create`` store the timestamps set on the objects.

    ``auto_now``/``auto_now_add`` fields overwrite any given value in ``pre_save``; demo
    rows need dates in the past, so the flags are off for the duration of the insert.
    """
    saved = []
    for model in model_classes:
        for f in model._meta.concrete_fields:
            if isinstance(f, models.DateField) and (f.auto_now or f.auto_now_add):
                saved.append((f, f.auto_now, f.auto_now_add))
                f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def _insert(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    ignore_conflicts: bool = True,
    batch_size: int = 1000,
) -> TableResult:
    if objs:
        with keep_given_timestamps(model):
            model.objects.bulk_create(
                objs, batch_size=batch_size, ignore_conflicts=ignore_conflicts
            )
    return TableResult(table_label(model), len(objs))


def _missing_by_pk(model: type[models.Model], objs: Sequence[models.Model]) -> list:
    present = set(model.objects.filter(pk__in=[o.pk for o in objs]).values_list("pk", flat=True))
    return [o for o in objs if o.pk not in present]


# ---------------------------------------------------------------------------------
# The base seed
# ---------------------------------------------------------------------------------


@dataclass
class SeedPlan:
    """Everything the base seed will insert, built from one RNG in a fixed order."""

    now: datetime
    companies: list[Company] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    staff: list[User] = field(default_factory=list)
    oauth: list[OAuthAccount] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    automations: list[Automation] = field(default_factory=list)
    sessions: list[CodexSession] = field(default_factory=list)
    executions: list[ExecutionHistory] = field(default_factory=list)
    sandbox: list[SandboxExecution] = field(default_factory=list)
    cache: list[McpCache] = field(default_factory=list)
    user_sessions: list[UserSession] = field(default_factory=list)
    metrics: list[SystemMetric] = field(default_factory=list)
    activity: list[ActivityLog] = field(default_factory=list)
    security: list[SecurityEvent] = field(default_factory=list)
    callers: dict[uuid.UUID, str] = field(default_factory=dict)


def caller_id(user: User) -> str:
    """How the gateway names this user: its identity-provider id, email or an opaque id."""
    if user.keycloak_id:
        return user.keycloak_id
    if int(user.pk.hex[-1], 16) % 2:
        return user.email
    return f"usr_{user.pk.hex[:24]}"


def _plan_accounts(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    used_emails: set[str] = set()
    for name, domain, sub_plan, max_users, active, n_users in COMPANIES:
        company = Company(
            id=demo_uuid("company", domain),
            name=name,
            domain=domain,
            subscription_plan=sub_plan,
            max_users=max_users,
            is_active=active,
            created_at=now - timedelta(days=rng.randint(200, 900), minutes=rng.randrange(1440)),
        )
        company.updated_at = company.created_at + timedelta(days=rng.randint(0, 150))
        plan.companies.append(company)
        for _ in range(n_users):
            while True:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                local = f"{first}.{last}".lower().replace("ü", "ue")
                email = f"{local}@{domain}"
                if email not in used_emails:
                    used_emails.add(email)
                    break
            joined = company.created_at + timedelta(
                days=rng.randint(0, max(1, (now - company.created_at).days - 70))
            )
            user = User(
                id=demo_uuid("user", email),
                email=email,
                first_name=first,
                last_name=last,
                company=company,
                department=_weighted(rng, DEPARTMENTS_WEIGHTED),
                subscription_plan=sub_plan,
                keycloak_id=str(demo_uuid("keycloak", email)) if rng.random() < 0.6 else None,
                is_active=active and rng.random() > 0.06,
                created_at=joined,
                updated_at=joined + timedelta(days=rng.randint(0, 60)),
            )
            user.last_login = (
                _moment(rng, now, 20, bias=1.5) if user.is_active and rng.random() < 0.85 else None
            )
            user.set_unusable_password()
            plan.users.append(user)
    # A handful of staff with a usable password, so the admin can be tried as them.
    for company in plan.companies[:4]:
        members = [u for u in plan.users if u.company is company and u.is_active]
        staff = members[0]
        staff.is_staff = True
        staff.department = "Platform"
        plan.staff.append(staff)

    for user in plan.users:
        plan.callers[user.pk] = caller_id(user)
        if user.keycloak_id:
            plan.oauth.append(
                OAuthAccount(
                    user=user,
                    provider="keycloak",
                    provider_account_id=user.keycloak_id,
                    created_at=user.created_at,
                )
            )
        if rng.random() < 0.5:
            plan.oauth.append(
                OAuthAccount(
                    user=user,
                    provider="google",
                    provider_account_id=str(rng.randrange(10**20, 10**21)),
                    created_at=user.created_at + timedelta(minutes=rng.randint(1, 5000)),
                )
            )
        if user.department in TECH_DEPARTMENTS and rng.random() < 0.65:
            plan.oauth.append(
                OAuthAccount(
                    user=user,
                    provider="github",
                    provider_account_id=str(rng.randint(120_000, 190_000_000)),
                    created_at=user.created_at + timedelta(days=rng.randint(0, 30)),
                )
            )


def _automation_config(
    rng: random.Random, kind: str, company: Company, project: Project
) -> tuple[str, dict]:
    domain = company.domain
    if kind == Automation.Type.N8N:
        trigger = rng.choice(["cron", "webhook", "cron"])
        name = rng.choice(
            [
                f"Sync {project.name} failures to Slack",
                f"Nightly {project.name} export to BigQuery",
                "Create Jira ticket from failed agent session",
                "Post weekly usage digest",
            ]
        )
        config: dict[str, Any] = {
            "workflow_id": f"{rng.randrange(16**8):08x}",
            "base_url": f"https://n8n.{domain}",
            "trigger": {"type": trigger},
            "nodes": rng.sample(
                ["HTTP Request", "Postgres", "Slack", "IF", "Set", "Jira", "BigQuery", "Code"],
                k=rng.randint(3, 6),
            ),
            "retry_on_fail": rng.random() < 0.7,
            "timezone": "Europe/Berlin",
        }
        if trigger == "cron":
            config["trigger"]["schedule"] = rng.choice(
                ["0 */6 * * *", "15 2 * * *", "0 8 * * 1", "*/30 * * * *"]
            )
        else:
            config["trigger"]["webhook_path"] = f"/webhook/{demo_uuid('hook', project.pk)}"
        return name, config
    if kind == Automation.Type.MAUTIC:
        segment = rng.choice(["trial-users", "inactive-30d", "enterprise-admins", "new-signups"])
        return f"Mautic campaign: {segment}", {
            "base_url": f"https://mautic.{domain}",
            "campaign_id": rng.randint(3, 240),
            "segment": segment,
            "emails": [
                {"template": t, "delay_days": d}
                for t, d in zip(
                    ["welcome", "first-session-tips", "invite-your-team", "upgrade-offer"],
                    [0, 2, 5, 12],
                    strict=True,
                )
            ][: rng.randint(2, 4)],
            "utm_campaign": f"{project.name}-{segment}",
        }
    bot = rng.choice(["lead-qualification", "support-triage", "onboarding-survey", "nps"])
    return f"Typebot: {bot.replace('-', ' ')}", {
        "typebot_id": f"cl{rng.randrange(36**10):010x}",
        "public_id": f"{company.domain.split('.')[0]}-{bot}",
        "theme": {"font": "Inter", "primary_color": rng.choice(["#0B5FFF", "#16A34A", "#9333EA"])},
        "variables": rng.sample(["email", "company", "plan", "team_size", "use_case"], k=3),
        "webhook_url": f"https://api.{domain}/hooks/typebot",
    }


def _plan_projects(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    names = iter(PROJECTS * 3)
    # Larger companies get more projects: 25 in all.
    per_company = [6, 5, 4, 3, 3, 2, 1, 1]
    for company, count in zip(plan.companies, per_company, strict=True):
        members = [u for u in plan.users if u.company is company]
        for _ in range(count):
            slug, description = next(names)
            owner = rng.choice([u for u in members if u.is_active] or members)
            created = max(owner.created_at, now - timedelta(days=rng.randint(30, 400)))
            plan.projects.append(
                Project(
                    id=demo_uuid("project", f"{company.domain}/{slug}"),
                    name=slug,
                    description=description,
                    company=company,
                    owner=owner,
                    status=_weighted(rng, [("active", 70), ("paused", 15), ("archived", 15)]),
                    created_at=created,
                    updated_at=created + timedelta(days=rng.randint(0, 25)),
                )
            )
    for i in range(40):
        project = plan.projects[i % len(plan.projects)] if i < 25 else rng.choice(plan.projects)
        kind = _weighted(rng, [("n8n", 50), ("mautic", 25), ("typebot", 25)])
        name, config = _automation_config(rng, kind, project.company, project)
        created = project.created_at + timedelta(days=rng.randint(0, 20))
        plan.automations.append(
            Automation(
                id=demo_uuid("automation", i),
                name=name,
                type=kind,
                config=config,
                project=project,
                is_active=project.status == "active" and rng.random() < 0.85,
                created_at=created,
                updated_at=created + timedelta(days=rng.randint(0, 10)),
            )
        )


def _fragment_values(rng: random.Random) -> dict[str, str]:
    file = rng.choice(FILES)
    return {
        "func": rng.choice(FUNCS),
        "file": file,
        "module": file.removesuffix(".py").replace("/", "."),
        "table": rng.choice(TABLES),
        "n": str(rng.randint(2, 6)),
        "tests": str(rng.randint(20, 400)),
    }


def exchange(rng: random.Random) -> tuple[str, str]:
    """One prompt and its response, assembled from the shared fragments."""
    prompt, response = EXCHANGES[rng.randrange(len(EXCHANGES))]
    values = _fragment_values(rng)
    prompt = rng.choice(PROMPT_PREFIXES) + prompt + rng.choice(PROMPT_SUFFIXES)
    response = rng.choice(RESPONSE_INTROS) + response + rng.choice(RESPONSE_OUTROS)
    return fill(prompt, values), fill(response, values)


def _session_metadata(rng: random.Random, project: Project | None) -> dict[str, Any]:
    if project is not None:
        org = project.company.domain.split(".")[0]
        repo = f"{org}/{project.name}"
    else:
        repo = "platform/agent-gateway"
    meta: dict[str, Any] = {
        "repo": repo,
        "branch": rng.choice(BRANCHES),
        "base_commit": f"{rng.getrandbits(160):040x}",
        "client": {
            "name": "codex-cli",
            "version": rng.choice(CLIENT_VERSIONS),
            "os": rng.choice(CLIENT_OS),
        },
        "sandbox_image": rng.choice(SANDBOX_IMAGES),
        "approval_policy": rng.choice(["on-request", "on-request", "never", "untrusted"]),
        "sandbox_mode": rng.choice(["workspace-write", "workspace-write", "read-only"]),
    }
    if project is not None:
        meta["project_id"] = str(project.pk)
    return meta


def _execution_ms(rng: random.Random) -> int:
    if rng.random() < 0.015:  # the occasional very slow round
        return rng.randint(120_000, 600_000)
    return int(min(110_000, 250 + rng.lognormvariate(8.0, 0.9)))


def _tokens(rng: random.Random) -> int:
    return int(min(180_000, 80 + rng.lognormvariate(7.6, 0.8)))


def _sandbox_result(rng: random.Random, columns: list[str], now: datetime) -> dict[str, Any]:
    n_rows = 1 if columns == ["size"] else rng.randint(1, 8)
    rows = []
    for i in range(n_rows):
        row: list[Any] = []
        for col in columns:
            if col in {"n", "n_live_tup", "n_dead_tup", "pending", "subscribers", "items"}:
                row.append(rng.randint(0, 250_000))
            elif col in {"revenue", "avg_mrr"}:
                row.append(round(rng.uniform(40, 90_000), 2))
            elif col == "total_cents":
                row.append(rng.randint(1_000, 2_000_000))
            elif col == "day":
                row.append((now - timedelta(days=n_rows - i)).date().isoformat())
            elif col == "created_at":
                row.append((now - timedelta(minutes=rng.randint(1, 9000))).isoformat())
            elif col == "email":
                row.append(f"customer{rng.randint(1000, 99999)}@example.com")
            elif col == "id":
                row.append(rng.randint(1, 9_999_999))
            elif col == "size":
                row.append(f"{rng.randint(2, 900)} GB")
            else:
                row.append(
                    rng.choice(
                        {
                            "status": ["paid", "open", "void", "uncollectible", "draft"],
                            "relname": TABLES,
                            "country": ["DE", "FR", "NL", "GB", "PL", "ES", "IT", "SE"],
                            "plan": ["free", "starter", "pro", "enterprise"],
                        }.get(col, ["?"])
                    )
                )
        rows.append(row)
    return {"columns": columns, "rows": rows, "row_count": n_rows, "truncated": False}


def _plan_sessions(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    active_users = [u for u in plan.users if u.is_active and u.company.is_active]
    # Some people use the agent far more than others.
    weights = [rng.paretovariate(1.3) for _ in active_users]
    projects_by_company: dict[uuid.UUID, list[Project]] = {}
    for project in plan.projects:
        projects_by_company.setdefault(project.company.pk, []).append(project)

    for i in range(BASE_SESSIONS):
        if rng.random() < 0.04:
            user_id, project = rng.choice(SERVICE_CALLERS), None
        else:
            user = rng.choices(active_users, weights=weights)[0]
            user_id = plan.callers[user.pk]
            project = rng.choice(projects_by_company.get(user.company.pk, [None]))
        created = (
            now - timedelta(minutes=rng.randint(5, 600))
            if i < 15  # a few from today, so "today" views have something to show
            else _moment(rng, now, 60, bias=1.3)
        )
        # Draw both every time: the RNG sequence must not depend on the clock.
        still_running, status = rng.random() < 0.7, _weighted(rng, FINAL_STATUSES_WEIGHTED)
        if still_running and now - created < timedelta(hours=3):
            status = "active"
        session = CodexSession(
            session_id=demo_uuid("session", i),
            user_id=user_id,
            model=_weighted(rng, MODELS_WEIGHTED),
            status=status,
            metadata=_session_metadata(rng, project),
            created_at=created,
        )
        n_exec = min(25, 3 + int(rng.expovariate(1 / 7)))
        moment = created
        for j in range(n_exec):
            duration = _execution_ms(rng)
            moment = min(now, moment + timedelta(seconds=rng.randint(4, 600)))
            prompt, response = exchange(rng)
            tokens = _tokens(rng)
            last = j == n_exec - 1
            if last and status == "timeout":
                duration, response = 600_000, None
            elif last and status in {"failed", "cancelled"}:
                response = None
            plan.executions.append(
                ExecutionHistory(
                    session_id=session.session_id,
                    prompt=prompt,
                    response=response,
                    tokens_used=tokens if response is not None else None,
                    execution_time_ms=duration,
                    created_at=moment,
                )
            )
            moment = min(now, moment + timedelta(milliseconds=duration))
        session.updated_at = moment
        error_code = rng.choice(["sandbox_crashed", "upstream_5xx", "context_length_exceeded"])
        if status == "timeout":
            session.metadata["error"] = {"code": "timeout", "after_ms": 600_000}
        elif status == "failed":
            session.metadata["error"] = {"code": error_code}
        plan.sessions.append(session)

        if rng.random() < 0.45:
            for _ in range(rng.randint(1, 4)):
                executed = min(now, created + timedelta(seconds=rng.randint(30, 3600)))
                if rng.random() < 0.15:
                    sql, error = rng.choice(SANDBOX_ERRORS)
                    result = None
                else:
                    sql, columns = rng.choice(SANDBOX_QUERIES)
                    error, result = None, _sandbox_result(rng, columns, executed)
                plan.sandbox.append(
                    SandboxExecution(
                        session_id=session.session_id,
                        sql_query=sql,
                        result=result,
                        error=error,
                        executed_at=executed,
                    )
                )


def _title(rng: random.Random) -> str:
    """A ticket or pull-request title: the first sentence of a prompt."""
    text = fill(rng.choice(EXCHANGES)[0], _fragment_values(rng))
    return text.split(". ")[0].split("\n")[0].rstrip(".:")[:90]


def mcp_entry(rng: random.Random) -> tuple[str, dict[str, Any], dict[str, Any] | list]:
    """A tool name, its arguments and a plausible cached result."""
    tool = rng.choice(MCP_TOOLS)
    org = rng.choice(COMPANIES)[1].split(".")[0]
    repo = rng.choice(PROJECTS)[0]
    file = rng.choice(FILES)
    table = rng.choice(TABLES)
    if tool == "github.search_code":
        term = rng.choice(SEARCH_TERMS)
        args: dict[str, Any] = {"q": f"{term} repo:{org}/{repo}", "per_page": 30}
        n = rng.randint(0, 12)
        result: Any = {
            "total_count": n,
            "items": [
                {"path": rng.choice(FILES), "sha": f"{rng.getrandbits(160):040x}"}
                for _ in range(min(n, 3))
            ],
        }
    elif tool == "github.get_file_contents":
        args = {"owner": org, "repo": repo, "path": file, "ref": rng.choice(BRANCHES)}
        result = {
            "encoding": "utf-8",
            "size": rng.randint(400, 40_000),
            "sha": f"{rng.getrandbits(160):040x}",
            "content": f'"""{file}"""\n\nimport logging\n\nlog = logging.getLogger(__name__)\n',
        }
    elif tool == "github.list_pull_requests":
        args = {"owner": org, "repo": repo, "state": rng.choice(["open", "closed"])}
        result = [
            {"number": rng.randint(10, 4000), "title": _title(rng)}
            for _ in range(rng.randint(0, 4))
        ]
    elif tool == "postgres.query":
        sql, columns = rng.choice(SANDBOX_QUERIES)
        args = {"sql": sql, "database": rng.choice(["analytics", "app", "warehouse"])}
        result = _sandbox_result(rng, columns, timezone.now())
    elif tool == "postgres.describe_table":
        args = {"schema": "public", "table": table}
        result = {
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False},
                {"name": "customer_id", "type": "bigint", "nullable": False},
                {"name": "status", "type": "text", "nullable": False},
                {"name": "amount_cents", "type": "integer", "nullable": True},
                {"name": "created_at", "type": "timestamp with time zone", "nullable": False},
            ][: rng.randint(3, 5)],
            "indexes": [f"{table}_pkey", f"{table}_created_at_idx"],
        }
    elif tool == "filesystem.read_file":
        args = {"path": f"/workspace/{repo}/{file}"}
        result = {"bytes": rng.randint(300, 60_000), "truncated": False, "content": "..."}
    elif tool == "filesystem.list_directory":
        folder = file.split("/")[0]
        args = {"path": f"/workspace/{repo}/{folder}"}
        result = {"entries": sorted({f.split("/")[-1] for f in rng.sample(FILES, 4)})}
    elif tool == "web.fetch":
        url = rng.choice(WEB_URLS)
        args = {"url": url, "max_length": rng.choice([5000, 20000])}
        result = {"status": 200, "content_type": "text/html; charset=utf-8", "chars": 18_000}
    elif tool == "web.search":
        query = rng.choice(
            [
                "postgres skip locked queue",
                "httpx retry transport",
                "django bulk_create ignore_conflicts returning",
                "cloud sql max_connections per vcpu",
                "stripe webhook signature tolerance",
            ]
        )
        args = {"query": query, "num_results": rng.choice([5, 10])}
        result = {"results": [{"title": query.title(), "url": rng.choice(WEB_URLS)}]}
    else:
        key = f"{rng.choice(['BILL', 'PLAT', 'DATA', 'OPS'])}-{rng.randint(100, 4999)}"
        args = {"key": key}
        result = {
            "key": key,
            "summary": _title(rng),
            "status": rng.choice(["To Do", "In Progress", "In Review", "Done"]),
        }
    return tool, args, result


def _plan_cache(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    seen: set[tuple[str, str]] = set()
    while len(plan.cache) < 240:
        tool, args, result = mcp_entry(rng)
        key = (tool, json.dumps(args, sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        ttl = timedelta(seconds=rng.choice(CACHE_TTLS))
        roll = rng.random()
        if roll < 0.34:  # expired
            expires = now - timedelta(minutes=rng.randint(1, 20 * 1440))
            cached, expires_at = expires - ttl, expires
        elif roll < 0.46:  # never expires
            cached, expires_at = now - timedelta(minutes=rng.randint(1, 30 * 1440)), None
        else:  # still valid
            expires = now + timedelta(seconds=rng.randint(60, int(ttl.total_seconds())))
            cached, expires_at = expires - ttl, expires
        plan.cache.append(
            McpCache(
                tool_name=tool,
                arguments=args,
                result=result,
                cached_at=cached,
                expires_at=expires_at,
            )
        )


def _plan_analytics(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    for user in plan.users:
        if not user.company.is_active:
            continue
        home_ip, agent = _ip(rng), rng.choice(USER_AGENTS)
        count = rng.randint(8, 30) if user.is_active else rng.randint(1, 4)
        for k in range(count):
            start = _moment(rng, now, 60 if user.is_active else 90, bias=1.2)
            if not user.is_active:
                start -= timedelta(days=30)
            ongoing = user.is_active and k == 0 and rng.random() < 0.1
            if ongoing:
                start = now - timedelta(minutes=rng.randint(1, 50))
            plan.user_sessions.append(
                UserSession(
                    id=demo_uuid("user-session", f"{user.email}:{k}"),
                    user=user,
                    session_start=start,
                    session_end=None
                    if ongoing
                    else start + timedelta(minutes=int(2 + rng.expovariate(1 / 25))),
                    ip_address=home_ip if rng.random() < 0.8 else _ip(rng),
                    user_agent=agent if rng.random() < 0.85 else rng.choice(USER_AGENTS),
                    actions_count=int(1 + rng.expovariate(1 / 30)),
                )
            )
    step = timedelta(minutes=30)
    # A fixed number of slots ending at the last full half hour, so that ids (by slot
    # number) and the RNG sequence do not depend on the clock.
    slots = 14 * 48
    last = now.replace(minute=30 if now.minute >= 30 else 0, second=0, microsecond=0)
    for name, base, amplitude, noise, tags in METRICS:
        for s in range(slots):
            at = last - (slots - 1 - s) * step
            hour = at.hour + at.minute / 60
            # Daytime load: a smooth bump peaking mid-afternoon, lower on weekends.
            load = max(0.0, math.sin(math.pi * (hour - 6) / 15)) if 6 <= hour <= 21 else 0.0
            if at.weekday() >= 5:
                load *= 0.35
            value = (base + amplitude * load) * (1 + rng.gauss(0, noise))
            if name == "mcp.cache_hit_ratio":
                value = min(0.99, max(0.2, value))
            elif name in {"cloudsql.cpu_utilization"}:
                value = min(1.0, max(0.01, value))
            elif name in {"gateway.active_sessions", "cloudsql.connections"}:
                value = round(max(0.0, value))
            elif name == "cloudrun.instance_count":
                value = max(1, round(value))
            plan.metrics.append(
                SystemMetric(
                    id=demo_uuid("metric", f"{name}:{s}"),
                    metric_name=name,
                    metric_value=round(max(0.0, value), 6),
                    tags={**tags, "region": "europe-west1", "env": "demo"},
                    recorded_at=at,
                )
            )


def _plan_audit(plan: SeedPlan, rng: random.Random) -> None:
    now = plan.now
    actors = plan.staff
    targets: list[tuple[str, models.Model]] = (
        [("core.project", p) for p in plan.projects]
        + [("core.automation", a) for a in plan.automations]
        + [("accounts.user", u) for u in plan.users]
        + [("accounts.company", c) for c in plan.companies]
    )
    for i in range(500):
        actor = rng.choice(actors)
        ip, agent = _ip(rng, 0.1), rng.choice(USER_AGENTS[:5])
        when = _moment(rng, now, 60, bias=1.2)
        resource_type, obj = rng.choice(targets)
        action = _weighted(
            rng, [("view", 40), ("update", 30), ("create", 10), ("export", 8), ("delete", 4)]
        )
        details: dict[str, Any] = {}
        if action == "update":
            if resource_type == "core.project":
                details = {"changes": {"status": ["active", rng.choice(["paused", "archived"])]}}
            elif resource_type == "core.automation":
                details = {"changes": {"is_active": [True, False]}}
            elif resource_type == "accounts.user":
                details = {"changes": {"department": ["", "Engineering"]}}
            else:
                details = {"changes": {"max_users": [10, rng.choice([25, 50, 100])]}}
        elif action == "export":
            details = {"format": rng.choice(["csv", "json"]), "rows": rng.randint(10, 5000)}
        plan.activity.append(
            ActivityLog(
                id=demo_uuid("activity", i),
                user=actor,
                actor_email=actor.email,
                action=action,
                resource_type=resource_type,
                resource_id=str(obj.pk),
                object_repr=str(obj)[:500],
                details=details,
                ip_address=ip,
                user_agent=agent,
                request_id=demo_uuid("request", i).hex,
                created_at=when,
            )
        )
    # Database-diagnostics actions and a system job without a user.
    for i in range(30):
        actor = rng.choice(actors)
        action = rng.choice(["cancel_query", "terminate_backend", "purge_expired_cache"])
        system = action == "purge_expired_cache"
        plan.activity.append(
            ActivityLog(
                id=demo_uuid("activity-ops", i),
                user=None if system else actor,
                actor_email="" if system else actor.email,
                action=action,
                resource_type="core.mcpcache" if system else "diagnostics.backend",
                resource_id="" if system else str(rng.randint(1000, 65000)),
                object_repr="expired tool cache" if system else "pid backend",
                details={"deleted": rng.randint(10, 4000)}
                if system
                else {"query": "SELECT * FROM events ORDER BY payload->>'ts'", "duration_s": 912},
                ip_address=None if system else _ip(rng, 0.0),
                user_agent="" if system else USER_AGENTS[0],
                request_id="" if system else demo_uuid("request-ops", i).hex,
                created_at=_moment(rng, now, 60),
            )
        )

    n = 0

    def event(kind: str, user: User | None, email: str, ip: str, at: datetime, **details):
        nonlocal n
        n += 1
        plan.security.append(
            SecurityEvent(
                id=demo_uuid("security", n),
                event_type=kind,
                user=user,
                email_attempted=email,
                ip_address=ip,
                user_agent=rng.choice(USER_AGENTS[:5]),
                details=details,
                created_at=at,
            )
        )

    for _ in range(260):
        user = rng.choice(plan.staff + plan.staff + plan.users[:20])
        ip, at = _ip(rng, 0.1), _moment(rng, now, 60, bias=1.2)
        if rng.random() < 0.12:
            event("login_failure", user, user.email, ip, at, reason="invalid_password")
            at += timedelta(seconds=rng.randint(5, 60))
        event("login_success", user, user.email, ip, at, method="password")
        if rng.random() < 0.6:
            event("logout", user, user.email, ip, at + timedelta(minutes=rng.randint(3, 240)))
    # A small credential-stuffing burst from one address, ending in a lockout.
    burst_ip, burst_at = "198.51.100.77", now - timedelta(days=9, hours=3)
    target = plan.staff[1]
    for k in range(12):
        email = (
            target.email
            if k % 3 == 0
            else rng.choice(["admin@", "root@", "it@"]) + (target.company.domain)
        )
        event(
            "login_failure",
            target if email == target.email else None,
            email,
            burst_ip,
            burst_at + timedelta(seconds=7 * k),
            reason="invalid_password" if email == target.email else "unknown_user",
        )
    event("lockout", target, target.email, burst_ip, burst_at + timedelta(seconds=90), failures=5)
    for staff in plan.staff:
        event(
            "password_change",
            staff,
            staff.email,
            _ip(rng, 0.0),
            _moment(rng, now, 50),
            method="self_service",
        )
    # Mirrors _seed_groups: staff i joins DEMO_GROUPS[i % 2]; DIRECT_GRANTEES get
    # DIRECT_PERMISSION on top.
    granter = plan.staff[0]
    for i, staff in enumerate(plan.staff):
        at = staff.created_at + timedelta(days=1, minutes=rng.randint(0, 600))
        event(
            "group_change",
            staff,
            staff.email,
            _ip(rng, 0.0),
            at,
            by=granter.email,
            group=DEMO_GROUPS[i % len(DEMO_GROUPS)][0],
            added=True,
        )
        if i in DIRECT_GRANTEES:
            event(
                "permission_change",
                staff,
                staff.email,
                _ip(rng, 0.0),
                at + timedelta(minutes=5),
                by=granter.email,
                permission=".".join(DIRECT_PERMISSION),
                granted=True,
            )


def build_plan(now: datetime | None = None) -> SeedPlan:
    """Every row of the base seed, in memory. Same RNG order on every run."""
    rng = random.Random(SEED)  # noqa: S311 (demo data, reproducible on purpose)
    plan = SeedPlan(now=now or timezone.now())
    _plan_accounts(plan, rng)
    _plan_projects(plan, rng)
    _plan_sessions(plan, rng)
    _plan_cache(plan, rng)
    _plan_analytics(plan, rng)
    _plan_audit(plan, rng)
    return plan


# New groups only; an existing group of the same name is left as it is.
DEMO_GROUPS = [
    ("Support", ["core", "analytics"]),
    ("Security reviewers", ["audit", "accounts"]),
]
DIRECT_PERMISSION = ("audit", "view_securityevent")
DIRECT_GRANTEES = {0, 2}  # indexes into the staff users


def _seed_groups(staff: list[User]) -> list[TableResult]:
    """Demo groups (view permissions), staff memberships and two direct grants."""
    created_groups = 0
    groups = []
    for name, apps in DEMO_GROUPS:
        group, created = Group.objects.get_or_create(name=name)
        if created:
            created_groups += 1
            group.permissions.set(
                Permission.objects.filter(
                    content_type__app_label__in=apps, codename__startswith="view_"
                )
            )
        groups.append(group)
    staff_ids = [u.pk for u in staff]

    memberships = User.groups.through
    present = set(
        memberships.objects.filter(user_id__in=staff_ids).values_list("user_id", "group_id")
    )
    new_memberships = [
        memberships(user_id=user.pk, group_id=groups[i % len(groups)].pk)
        for i, user in enumerate(staff)
        if (user.pk, groups[i % len(groups)].pk) not in present
    ]
    memberships.objects.bulk_create(new_memberships, ignore_conflicts=True)

    grants = User.user_permissions.through
    permission = Permission.objects.filter(
        content_type__app_label=DIRECT_PERMISSION[0], codename=DIRECT_PERMISSION[1]
    ).first()
    new_grants = []
    if permission is not None:
        present = set(
            grants.objects.filter(user_id__in=staff_ids).values_list("user_id", "permission_id")
        )
        new_grants = [
            grants(user_id=staff[i].pk, permission_id=permission.pk)
            for i in sorted(DIRECT_GRANTEES)
            if (staff[i].pk, permission.pk) not in present
        ]
        grants.objects.bulk_create(new_grants, ignore_conflicts=True)
    return [
        TableResult(table_label(Group), created_groups),
        TableResult(table_label(memberships), len(new_memberships)),
        TableResult(table_label(grants), len(new_grants)),
    ]


# Normalised statements as pg_stat_statements shows them: (query, share of calls,
# mean ms, rows per call).
DEMO_STATEMENTS = [
    (
        "INSERT INTO core.execution_history (session_id, prompt, response, tokens_used, "
        "execution_time_ms) VALUES ($1, $2, $3, $4, $5)",
        0.30,
        0.4,
        1.0,
    ),
    (
        "SELECT session_id, user_id, model, status, metadata, created_at FROM "
        "core.codex_sessions WHERE session_id = $1",
        0.22,
        0.05,
        1.0,
    ),
    (
        "UPDATE core.codex_sessions SET status = $1, updated_at = now() WHERE session_id = $2",
        0.12,
        0.2,
        1.0,
    ),
    (
        "SELECT result FROM core.mcp_cache WHERE tool_name = $1 AND arguments = $2 AND "
        "(expires_at IS NULL OR expires_at > now()) ORDER BY cached_at DESC LIMIT $3",
        0.18,
        1.8,
        0.7,
    ),
    (
        "INSERT INTO core.mcp_cache (tool_name, arguments, result, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        0.06,
        0.3,
        1.0,
    ),
    (
        'SELECT "core"."execution_history"."id", "core"."execution_history"."session_id" '
        'FROM "core"."execution_history" ORDER BY "core"."execution_history"."created_at" '
        'DESC, "core"."execution_history"."id" DESC LIMIT $1',
        0.01,
        3.1,
        100.0,
    ),
    (
        "SELECT model, count(*), sum(tokens_used) FROM core.execution_history e JOIN "
        "core.codex_sessions s USING (session_id) WHERE e.created_at >= $1 GROUP BY model",
        0.002,
        840.0,
        6.0,
    ),
    (
        "INSERT INTO core.sandbox_executions (session_id, sql_query, result, error) "
        "VALUES ($1, $2, $3, $4)",
        0.05,
        0.3,
        1.0,
    ),
    (
        "SELECT pid, usename, state, wait_event_type, query_start, query FROM "
        "pg_stat_activity WHERE datname = current_database()",
        0.004,
        1.2,
        14.0,
    ),
]

CURRENT_SIZES_SQL = """
SELECT n.nspname, c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
       pg_indexes_size(c.oid), coalesce(pg_total_relation_size(c.reltoastrelid), 0),
       greatest(c.reltuples, 0)::bigint
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(schemas)s)
ORDER BY pg_total_relation_size(c.oid) DESC
LIMIT 15
"""
CURRENT_DATABASE_SQL = "SELECT current_database(), pg_database_size(current_database())"


def _fake_queryid(query: str) -> int:
    digest = hashlib.sha1(query.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _seed_snapshots(now: datetime) -> list[TableResult]:
    """Two weeks of statistics history, every 6 hours, ending 6 hours ago.

    Only when the database has no snapshot yet: made-up history must not interleave with
    what ``snapshot_stats`` captured, and these rows have no natural key to match on.
    """
    alias = connection.alias
    with connection.cursor() as cursor:
        cursor.execute(CURRENT_DATABASE_SQL)
        database, database_size = cursor.fetchone()
        cursor.execute(CURRENT_SIZES_SQL, {"schemas": ["auth", "core", "analytics", "audit"]})
        tables = cursor.fetchall()
    labels = [table_label(m) for m in (StatsSnapshot, TableSizeSnapshot, QueryStatSnapshot)]
    if StatsSnapshot.objects.filter(alias=alias, database=database).exists():
        return [TableResult(label, 0) for label in labels]

    rng = random.Random(SEED + 1)  # noqa: S311 (demo data, reproducible on purpose)
    count = 14 * 4
    snapshots, sizes, queries = [], [], []
    statements = [(_fake_queryid(q), q, *r) for q, *r in DEMO_STATEMENTS]
    cumulative = {queryid: (0, 0.0) for queryid, *_ in statements}
    commits = rng.randint(2_000_000, 5_000_000)
    hits, reads = commits * 40, commits // 3
    for i in range(count):
        # Older snapshots show a smaller database; the last is close to today's size.
        growth = 0.55 + 0.45 * (i + 1) / count
        at = now - timedelta(hours=6 * (count - i))
        busy = 8 <= at.hour <= 18 and at.weekday() < 5
        calls = rng.randint(40_000, 90_000) if busy else rng.randint(4_000, 15_000)
        commits += calls
        hits += calls * rng.randint(30, 60)
        reads += calls // rng.randint(20, 80)
        active = rng.randint(3, 14) if busy else rng.randint(0, 3)
        idle = rng.randint(10, 30)
        snapshot = StatsSnapshot(
            alias=alias,
            database=database,
            captured_at=at,
            database_size_bytes=int(database_size * growth),
            connections_total=active + idle + 1,
            connections_active=active,
            connections_idle=idle,
            connections_idle_in_transaction=1 if rng.random() < 0.2 else 0,
            max_connections=100,
            xact_commit=commits,
            xact_rollback=commits // 400,
            blks_hit=hits,
            blks_read=reads,
        )
        snapshots.append(snapshot)
        for schema, table, total, heap, index, toast, row_estimate in tables:
            sizes.append(
                TableSizeSnapshot(
                    snapshot=snapshot,
                    schema_name=schema,
                    table_name=table,
                    total_bytes=int(total * growth),
                    table_bytes=int(heap * growth),
                    index_bytes=int(index * growth),
                    toast_bytes=int(toast * growth),
                    row_estimate=int(row_estimate * growth),
                )
            )
        for queryid, query, share, mean_ms, rows_per_call in statements:
            delta_calls = max(1, int(calls * share * rng.uniform(0.8, 1.2)))
            delta_ms = delta_calls * mean_ms * rng.uniform(0.7, 1.6)
            calls_total, ms_total = cumulative[queryid]
            cumulative[queryid] = (calls_total + delta_calls, ms_total + delta_ms)
            queries.append(
                QueryStatSnapshot(
                    snapshot=snapshot,
                    queryid=queryid,
                    role_name="gateway" if "pg_stat_activity" not in query else "portal",
                    query=query,
                    calls=delta_calls,
                    total_exec_time_ms=round(delta_ms, 3),
                    rows=int(delta_calls * rows_per_call),
                    shared_blks_hit=delta_calls * rng.randint(3, 40),
                    shared_blks_read=delta_calls // rng.randint(20, 400),
                    calls_cumulative=cumulative[queryid][0],
                    total_exec_time_ms_cumulative=round(cumulative[queryid][1], 3),
                )
            )
    StatsSnapshot.objects.bulk_create(snapshots)  # PostgreSQL returns the new ids
    TableSizeSnapshot.objects.bulk_create(sizes, batch_size=1000)
    QueryStatSnapshot.objects.bulk_create(queries, batch_size=1000)
    return [
        TableResult(labels[0], len(snapshots)),
        TableResult(labels[1], len(sizes)),
        TableResult(labels[2], len(queries)),
    ]


def seed_base(*, now: datetime | None = None, password: str | None = None) -> BaseSeedReport:
    """Insert the base demo data that is not there yet; one transaction.

    Staff users get ``password`` (default: the ``DEMO_USER_PASSWORD`` environment
    variable, else a generated one returned in the report); everyone else gets an
    unusable password.
    """
    plan = build_plan(now)
    report = BaseSeedReport(staff_emails=[u.email for u in plan.staff])
    out = report.tables
    with transaction.atomic():
        out.append(_insert(Company, _missing_by_pk(Company, plan.companies)))

        users = _missing_by_pk(User, plan.users)
        taken = set(
            User.objects.filter(email__in=[u.email for u in users]).values_list("email", flat=True)
        )
        if taken:
            # Demo rows link to the planned ids; someone else's account cannot stand in.
            raise SeedError(
                f"{len(taken)} demo email address(es) already belong to other users "
                f"(e.g. {sorted(taken)[0]}); remove them or seed another database"
            )
        new_staff = [u for u in users if u.is_staff]
        if new_staff:
            password = password or os.environ.get(PASSWORD_ENV) or None
            if password is None:
                password = secrets.token_urlsafe(18)
                report.generated_password = password
            for user in new_staff:
                user.set_password(password)
        out.append(_insert(User, users))
        out.extend(_seed_groups(plan.staff))

        present = set(
            OAuthAccount.objects.filter(
                provider_account_id__in=[o.provider_account_id for o in plan.oauth]
            ).values_list("provider", "provider_account_id")
        )
        out.append(
            _insert(
                OAuthAccount,
                [o for o in plan.oauth if (o.provider, o.provider_account_id) not in present],
            )
        )
        out.append(_insert(Project, _missing_by_pk(Project, plan.projects)))
        out.append(_insert(Automation, _missing_by_pk(Automation, plan.automations)))
        out.append(_insert(CodexSession, _missing_by_pk(CodexSession, plan.sessions)))

        session_ids = [s.session_id for s in plan.sessions]
        with_runs = set(
            ExecutionHistory.objects.filter(session_id__in=session_ids)
            .values_list("session_id", flat=True)
            .distinct()
        )
        out.append(
            _insert(
                ExecutionHistory,
                [e for e in plan.executions if e.session_id not in with_runs],
                ignore_conflicts=False,
                batch_size=500,
            )
        )
        # Only some sessions have sandbox runs, so a per-session check would add runs to
        # other sessions whenever the plan changes: any run on a demo session means done.
        sandbox_seeded = SandboxExecution.objects.filter(session_id__in=session_ids).exists()
        out.append(
            _insert(
                SandboxExecution, [] if sandbox_seeded else plan.sandbox, ignore_conflicts=False
            )
        )
        cached = {
            (tool, json.dumps(args, sort_keys=True))
            for tool, args in McpCache.objects.filter(
                arguments__in=[c.arguments for c in plan.cache]
            ).values_list("tool_name", "arguments")
        }
        out.append(
            _insert(
                McpCache,
                [
                    c
                    for c in plan.cache
                    if (c.tool_name, json.dumps(c.arguments, sort_keys=True)) not in cached
                ],
                ignore_conflicts=False,
            )
        )
        # Per user, all or nothing (the number of sessions per user is part of the plan).
        users_with_sessions = set(
            UserSession.objects.filter(user_id__in=[u.pk for u in plan.users])
            .values_list("user_id", flat=True)
            .distinct()
        )
        out.append(
            _insert(
                UserSession,
                [
                    us
                    for us in _missing_by_pk(UserSession, plan.user_sessions)
                    if us.user_id not in users_with_sessions
                ],
            )
        )
        out.append(_insert(SystemMetric, _missing_by_pk(SystemMetric, plan.metrics)))
        out.extend(_seed_snapshots(plan.now))
        # Append-only tables: plain INSERTs of the rows not there yet, never ON CONFLICT
        # (a partitioned audit table would not see a conflict across partitions).
        out.append(
            _insert(ActivityLog, _missing_by_pk(ActivityLog, plan.activity), ignore_conflicts=False)
        )
        out.append(
            _insert(
                SecurityEvent,
                _missing_by_pk(SecurityEvent, plan.security),
                ignore_conflicts=False,
            )
        )
    return report


# ---------------------------------------------------------------------------------
# Bulk top-up (--scale)
# ---------------------------------------------------------------------------------

# In these statements %% is a literal % (they run with parameters); arithmetic is float8,
# never numeric (power() on numeric costs ~10 µs a row). g.h is a 32-bit hash
# of the series number (hashint8, the hash PostgreSQL uses for bigint hash indexes); its
# "digits" (g.h / p %% m for different p) pick fragments. Templates arrive as format()
# strings (see sql_template), so a row's text is built in one pass, not one replace()
# per placeholder.

INSERT_SCALE_SESSIONS = """
INSERT INTO core.codex_sessions
    (session_id, user_id, model, status, metadata, created_at, updated_at)
SELECT md5(%(prefix)s || g.i)::uuid,
       (%(callers)s::text[])[1 + (g.h / 7) %% cardinality(%(callers)s::text[])],
       (%(models)s::text[])[1 + (g.h / 101) %% cardinality(%(models)s::text[])],
       CASE WHEN c.created > %(anchor)s::timestamptz - interval '3 hours' AND g.h %% 10 < 7
            THEN 'active'
            ELSE (%(statuses)s::text[])[1 + (g.h / 1009) %% cardinality(%(statuses)s::text[])]
       END,
       jsonb_build_object(
           'repo', (%(repos)s::text[])[1 + (g.h / 13) %% cardinality(%(repos)s::text[])],
           'branch', (%(branches)s::text[])[1 + (g.h / 17) %% cardinality(%(branches)s::text[])],
           'client', jsonb_build_object(
               'name', 'codex-cli',
               'version',
               (%(versions)s::text[])[1 + (g.h / 19) %% cardinality(%(versions)s::text[])]),
           'sandbox_image',
           (%(images)s::text[])[1 + (g.h / 23) %% cardinality(%(images)s::text[])]),
       c.created,
       least(c.created + make_interval(secs => 30 + g.h %% 5400), %(anchor)s::timestamptz)
FROM (
    SELECT i, hashint8(i)::bigint + 2147483648 AS h
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS i
) AS g
CROSS JOIN LATERAL (
    -- A day in the window, recent days likelier, at an hour drawn from HOUR_WEIGHTS.
    SELECT date_trunc('day', %(anchor)s::timestamptz)
           - make_interval(days => floor(
                 %(days)s * power((g.h %% 100003) / 100003::float8, 1.6::float8))::int)
           + make_interval(
                 hours => (%(hours)s::int[])[1 + (g.h / 100003) %% cardinality(%(hours)s::int[])],
                 mins => ((g.h / 29) %% 60)::int,
                 secs => (g.h %% 59)::int) AS raw
) AS r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.raw > %(anchor)s::timestamptz THEN r.raw - interval '1 day'
                ELSE r.raw END AS created
) AS c
ORDER BY c.created
ON CONFLICT (session_id) DO NOTHING
"""

SCALE_SESSION_EXISTS = "SELECT EXISTS (SELECT 1 FROM core.codex_sessions WHERE session_id = %s)"

# Each row belongs to a hashed session number (so sessions get Poisson-like counts of
# executions) and is dated (g.at) a little after its session started, never after anchor.
# Rows go in in time order: the created_at indexes and the heap then fill in sequence,
# about 30% faster than hash order once the table outgrows shared_buffers.
SCALE_ROWS_WITH_SESSION = """
FROM (
    SELECT g0.k, g0.h, s.session_id,
           least(s.created_at
                 + make_interval(secs => %(min_offset)s + (g0.h / 3) %% %(max_offset)s),
                 %(anchor)s::timestamptz) AS at
    FROM (
        SELECT k,
               hashint8(k)::bigint + 2147483648 AS h,
               1 + (hashint8extended(k, 7) & 9223372036854775807) %% %(sessions)s AS sid
        FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS k
    ) AS g0
    JOIN core.codex_sessions AS s ON s.session_id = md5(%(prefix)s || g0.sid)::uuid
    ORDER BY 4
) AS g
"""

INSERT_SCALE_EXECUTIONS = (
    """
INSERT INTO core.execution_history
    (session_id, prompt, response, tokens_used, execution_time_ms, created_at)
SELECT g.session_id,
       format(
           (%(prefixes)s::text[])[1 + (g.h / 7) %% cardinality(%(prefixes)s::text[])]
           || (%(prompts)s::text[])[f.t]
           || (%(suffixes)s::text[])[1 + (g.h / 11) %% cardinality(%(suffixes)s::text[])],
           f.fn, f.file, f.module, f.tbl, f.n, f.tests),
       CASE WHEN g.h %% 53 <> 0 THEN format(
           (%(intros)s::text[])[1 + (g.h / 13) %% cardinality(%(intros)s::text[])]
           || (%(responses)s::text[])[f.t]
           || (%(outros)s::text[])[1 + (g.h / 17) %% cardinality(%(outros)s::text[])],
           f.fn, f.file, f.module, f.tbl, f.n, f.tests)
       END,
       CASE WHEN g.h %% 53 <> 0
            THEN least(200000, 80 + 2000 * power(-ln(1 - random()), 1.4::float8))::int END,
       CASE WHEN random() < 0.012 THEN 120000 + (random() * 480000)::int
            ELSE least(110000, 250 + 3000 * power(-ln(1 - random()), 1.6::float8))::int END,
       g.at
"""
    + SCALE_ROWS_WITH_SESSION
    + """
CROSS JOIN LATERAL (
    SELECT 1 + g.h %% cardinality(%(prompts)s::text[]) AS t,
           (%(funcs)s::text[])[1 + (g.h / 19) %% cardinality(%(funcs)s::text[])] AS fn,
           (%(files)s::text[])[1 + (g.h / 23) %% cardinality(%(files)s::text[])] AS file,
           (%(modules)s::text[])[1 + (g.h / 23) %% cardinality(%(files)s::text[])] AS module,
           (%(tables)s::text[])[1 + (g.h / 29) %% cardinality(%(tables)s::text[])] AS tbl,
           2 + (g.h / 31) %% 5 AS n,
           20 + (g.h / 37) %% 380 AS tests
) AS f
"""
)

INSERT_SCALE_SANDBOX = (
    """
INSERT INTO core.sandbox_executions (session_id, sql_query, result, error, executed_at)
SELECT g.session_id,
       CASE WHEN g.h %% 100 < 15
            THEN (%(bad_sql)s::text[])[1 + (g.h / 7) %% cardinality(%(bad_sql)s::text[])]
            ELSE (%(sql)s::text[])[1 + (g.h / 7) %% cardinality(%(sql)s::text[])] END,
       CASE WHEN g.h %% 100 >= 15
            THEN ((%(results)s::text[])[
                1 + (g.h / 7) %% cardinality(%(sql)s::text[])
                + cardinality(%(sql)s::text[]) * ((g.h / 101) %% %(result_variants)s)])::jsonb
       END,
       CASE WHEN g.h %% 100 < 15
            THEN (%(errors)s::text[])[1 + (g.h / 7) %% cardinality(%(bad_sql)s::text[])] END,
       g.at
"""
    + SCALE_ROWS_WITH_SESSION
)

# A pool of distinct (tool, arguments, result) triples, each cached many times over the
# window, as the gateway refills an entry after it expires.
INSERT_SCALE_CACHE = """
INSERT INTO core.mcp_cache (tool_name, arguments, result, cached_at, expires_at)
SELECT (%(tools)s::text[])[e.i],
       ((%(arguments)s::text[])[e.i])::jsonb,
       ((%(tool_results)s::text[])[e.i])::jsonb,
       c.cached_at,
       CASE WHEN g.h %% 100 >= 12
            THEN c.cached_at + make_interval(
                secs => (%(ttls)s::int[])[1 + (g.h / 7) %% cardinality(%(ttls)s::int[])])
       END
FROM (
    SELECT k, hashint8(k)::bigint + 2147483648 AS h
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS k
) AS g
CROSS JOIN LATERAL (
    SELECT 1 + (g.h / 11) %% cardinality(%(tools)s::text[]) AS i
) AS e
CROSS JOIN LATERAL (
    SELECT %(anchor)s::timestamptz
           - make_interval(secs => (g.h / 13) %% (%(days)s * 86400)) AS cached_at
) AS c
"""

COUNT_SQL = {
    "core.codex_sessions": "SELECT count(*) FROM core.codex_sessions",
    "core.execution_history": "SELECT count(*) FROM core.execution_history",
    "core.sandbox_executions": "SELECT count(*) FROM core.sandbox_executions",
    "core.mcp_cache": "SELECT count(*) FROM core.mcp_cache",
}
ANALYZE_SQL = (
    "ANALYZE core.codex_sessions, core.execution_history, core.sandbox_executions, core.mcp_cache"
)


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL[table])
        return int(cursor.fetchone()[0])


RESULT_VARIANTS = 4
PLACEHOLDERS = ["func", "file", "module", "table", "n", "tests"]


def sql_template(text: str) -> str:
    """A fragment as a format() string: ``{func}`` becomes ``%1$s`` and so on."""
    text = text.replace("%", "%%")
    for position, name in enumerate(PLACEHOLDERS, start=1):
        text = text.replace("{" + name + "}", f"%{position}$s")
    return text


def _scale_params(callers: Sequence[str]) -> dict[str, Any]:
    """The fragment arrays the bulk statements pick from."""
    rng = random.Random(SEED)  # noqa: S311 (demo data, reproducible on purpose)
    tools, arguments, results = [], [], []
    for _ in range(500):
        tool, args, result = mcp_entry(rng)
        tools.append(tool)
        arguments.append(json.dumps(args))
        results.append(json.dumps(result))
    repos = [
        f"{domain.split('.')[0]}/{slug}" for _, domain, *_ in COMPANIES for slug, _ in PROJECTS[:4]
    ]
    return {
        "prefix": SCALE_SESSION_PREFIX,
        "callers": list(callers) or SERVICE_CALLERS,
        "models": _expand(MODELS_WEIGHTED),
        "statuses": _expand(FINAL_STATUSES_WEIGHTED),
        "repos": repos,
        "branches": BRANCHES,
        "versions": CLIENT_VERSIONS,
        "images": SANDBOX_IMAGES,
        "hours": [h for h, w in enumerate(HOUR_WEIGHTS) for _ in range(w)],
        "prefixes": [sql_template(t) for t in PROMPT_PREFIXES],
        "prompts": [sql_template(p) for p, _ in EXCHANGES],
        "suffixes": [sql_template(t) for t in PROMPT_SUFFIXES],
        "intros": [sql_template(t) for t in RESPONSE_INTROS],
        "responses": [sql_template(r) for _, r in EXCHANGES],
        "outros": [sql_template(t) for t in RESPONSE_OUTROS],
        "funcs": FUNCS,
        "files": FILES,
        "modules": [f.removesuffix(".py").replace("/", ".") for f in FILES],
        "tables": TABLES,
        "sql": [q for q, _ in SANDBOX_QUERIES],
        # RESULT_VARIANTS results per query: variant v of query q sits at q + v * len(queries).
        "results": [
            json.dumps(_sandbox_result(rng, cols, timezone.now()))
            for _ in range(RESULT_VARIANTS)
            for _, cols in SANDBOX_QUERIES
        ],
        "result_variants": RESULT_VARIANTS,
        "bad_sql": [q for q, _ in SANDBOX_ERRORS],
        "errors": [e for _, e in SANDBOX_ERRORS],
        "tools": tools,
        "arguments": arguments,
        "tool_results": results,
        "ttls": CACHE_TTLS,
    }


def _batches(start: int, stop: int, size: int) -> Iterable[tuple[int, int]]:
    for first in range(start, stop + 1, size):
        yield first, min(stop, first + size - 1)


def _run_batch(sql: str, params: dict[str, Any]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        # Demo data: losing the last batch in a crash is fine; waiting for each flush is not.
        cursor.execute("SET LOCAL synchronous_commit TO off")
        # Room to sort a batch's keys in memory (ORDER BY in SCALE_ROWS_WITH_SESSION).
        cursor.execute("SET LOCAL work_mem TO '256MB'")
        cursor.execute(sql, params)
        return cursor.rowcount


def _ensure_scale_sessions(
    sessions: int, batch_size: int, params: dict[str, Any], progress: ProgressCallback | None
) -> TableResult:
    table = "core.codex_sessions"
    created = 0
    for first, last in _batches(1, sessions, batch_size):
        # Batches commit in order, so if a batch's last session exists the batch is done.
        with connection.cursor() as cursor:
            cursor.execute(SCALE_SESSION_EXISTS, [scale_session_id(last)])
            if cursor.fetchone()[0]:
                continue
        created += _run_batch(INSERT_SCALE_SESSIONS, {**params, "start": first, "stop": last})
        if progress:
            progress(table, last, sessions)
    return TableResult(table, created, _count(table))


def scale_session_id(n: int) -> uuid.UUID:
    """The id of bulk session number ``n`` (what ``md5(prefix || n)::uuid`` gives)."""
    digest = hashlib.md5(f"{SCALE_SESSION_PREFIX}{n}".encode(), usedforsecurity=False)
    return uuid.UUID(digest.hexdigest())


def default_workers() -> int:
    """Parallel insert streams for the bulk top-up: one per core, at most four.

    Most of a row's cost is PostgreSQL parsing its prompt and response into the stored
    full-text document (~80 µs); an INSERT ... SELECT runs on one core, so separate
    connections are what use the others.
    """
    return max(1, min(4, os.cpu_count() or 1))


def _run_batch_in_thread(sql: str, params: dict[str, Any]) -> int:
    # Each thread has its own connection (Django's are per thread); close it when done.
    try:
        return _run_batch(sql, params)
    finally:
        connection.close()


def _top_up(
    table: str,
    sql: str,
    target: int,
    batch_size: int,
    params: dict[str, Any],
    progress: ProgressCallback | None,
    workers: int = 1,
) -> TableResult:
    existing = _count(table)
    missing = target - existing
    # Series numbers continue after the rows already there, so texts keep varying.
    ranges = []
    next_k, left = existing + 1, missing
    while left > 0:
        size = min(batch_size, left)
        ranges.append((next_k, next_k + size - 1))
        next_k, left = next_k + size, left - size
    added = 0

    def done(inserted: int) -> None:
        nonlocal added
        if inserted <= 0:
            raise SeedError(f"{table}: a batch inserted no rows; are the bulk sessions missing?")
        added += inserted
        if progress:
            progress(table, added, missing)

    if workers <= 1 or len(ranges) <= 1:
        for start, stop in ranges:
            done(_run_batch(sql, {**params, "start": start, "stop": stop}))
        return TableResult(table, added, existing + added)
    # Batches commit independently, in any order: an interrupted run leaves whole batches,
    # and the next run counts them and adds the rest.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed") as pool:
        futures = [
            pool.submit(_run_batch_in_thread, sql, {**params, "start": start, "stop": stop})
            for start, stop in ranges
        ]
        try:
            for future in as_completed(futures):
                done(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return TableResult(table, added, existing + added)


def scale_up(
    *,
    executions: int,
    sessions: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
    anchor: datetime | None = None,
    workers: int | None = None,
) -> list[TableResult]:
    """Top execution history up to ``executions`` rows, sandbox runs to 1/50 and the
    tool cache to 1/100 of it, over ``sessions`` bulk sessions (default 1/10).

    Existing rows count towards the targets; nothing is deleted or updated.
    """
    if executions < 1:
        raise ValueError("executions must be positive")
    sessions = sessions or max(1, executions // 10)
    callers = [
        caller_id(u) for u in User.objects.filter(is_active=True).only("id", "email", "keycloak_id")
    ] + SERVICE_CALLERS
    params = {
        **_scale_params(callers),
        "anchor": anchor or timezone.now(),
        "sessions": sessions,
        "days": 180,
    }
    results = [
        _ensure_scale_sessions(sessions, batch_size, params, progress),
        # An agent round lands within 2.5 hours of its session's start, a sandbox run
        # within the first hour; cache entries spread over the last 30 days.
        _top_up(
            "core.execution_history",
            INSERT_SCALE_EXECUTIONS,
            executions,
            batch_size,
            {**params, "min_offset": 5, "max_offset": 9000},
            progress,
            workers=default_workers() if workers is None else workers,
        ),
        _top_up(
            "core.sandbox_executions",
            INSERT_SCALE_SANDBOX,
            executions // 50,
            batch_size,
            {**params, "min_offset": 30, "max_offset": 3600},
            progress,
        ),
        _top_up(
            "core.mcp_cache",
            INSERT_SCALE_CACHE,
            executions // 100,
            batch_size,
            {**params, "days": 30},
            progress,
        ),
    ]
    if any(r.created for r in results):
        with connection.cursor() as cursor:
            cursor.execute(ANALYZE_SQL)
    return results
