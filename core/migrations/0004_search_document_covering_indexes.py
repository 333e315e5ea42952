# Faster execution-history search and dashboard/session sums at tens of millions of rows.
#
# 1. search_document: the full-text document (the expression of core.search.search_vector())
#    as a STORED generated column, and the GIN index on it instead of on the expression.
#    Testing one row against a search then compares a stored tsvector (~1 µs) instead of
#    re-parsing its prompt and response (~80 µs), which is what makes "newest matches
#    first" fast for common words. Cost: about 1 kB more per row.
#    Adding a stored generated column rewrites the table under an ACCESS EXCLUSIVE lock
#    (nothing is deployed yet; on a large live table this step would need a maintenance
#    window or a trigger-plus-backfill instead).
# 2. Covering indexes (INCLUDE the summed columns / the status) so the dashboard's
#    window totals, the sessions list's per-session sums and the sessions-by-status
#    counts are index-only scans. New indexes are built CONCURRENTLY first, the ones they
#    replace dropped CONCURRENTLY after: the table is never without an index for its
#    queries, and the gateway's writes are never blocked by a build.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


# Reviewed: applied before any deployment held data (see 1. above); a new migration of
# this shape on the live table must add the column nullable and backfill instead.
LINT_EXEMPT = {
    "adding-field-with-default": "the stored generated column was added while "
    "execution_history was still empty (before the first deployment)",
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0003_admin_list_indexes"),
    ]

    operations = [
        # First, or the rewrite below would rebuild this index too, parsing every text
        # twice. Searches still work until the new index is built, only slower.
        RemoveIndexConcurrently(model_name="executionhistory", name="exec_history_search_idx"),
        migrations.AddField(
            model_name="executionhistory",
            name="search_document",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.SearchVector(
                    django.db.models.functions.text.Left("prompt", 50000),
                    django.db.models.functions.text.Left("response", 50000),
                    config="english",
                ),
                output_field=django.contrib.postgres.search.SearchVectorField(),
                verbose_name="search document",
            ),
        ),
        AddIndexConcurrently(
            model_name="executionhistory",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["search_document"], name="exec_history_document_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="executionhistory",
            index=models.Index(
                fields=["-created_at", "-id"],
                include=("tokens_used", "execution_time_ms"),
                name="exec_history_created_cov_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="executionhistory", name="exec_history_created_idx"),
        AddIndexConcurrently(
            model_name="executionhistory",
            index=models.Index(
                fields=["session", "-created_at"],
                include=("tokens_used", "execution_time_ms"),
                name="exec_history_session_cov_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="executionhistory", name="exec_history_session_idx"),
        AddIndexConcurrently(
            model_name="codexsession",
            index=models.Index(
                fields=["-created_at"], include=("status",), name="codex_sessions_created_cov_idx"
            ),
        ),
        RemoveIndexConcurrently(model_name="codexsession", name="codex_sessions_created_idx"),
    ]
