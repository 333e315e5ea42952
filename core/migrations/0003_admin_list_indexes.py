# Indexes behind the admin's execution-history bucket filters (token and time buckets,
# newest first) and the failed sandbox runs. The bucket expressions must stay identical
# to core.search.token_bucket() / time_bucket(). CONCURRENTLY: see 0002.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


def _bucket(field, bounds):
    whens = [models.When(models.Q((f"{field}__isnull", True)), then=models.Value(0))]
    for bucket, high in enumerate(bounds, start=1):
        whens.append(models.When(models.Q((f"{field}__lt", high)), then=models.Value(bucket)))
    return models.Case(
        *whens, default=models.Value(len(bounds) + 1), output_field=models.IntegerField()
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0002_execution_search"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="executionhistory",
            index=models.Index(
                _bucket("tokens_used", [1000, 4000, 16000, 64000]),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="exec_history_tokens_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="executionhistory",
            index=models.Index(
                _bucket("execution_time_ms", [1000, 5000, 30000, 120000]),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                include=["execution_time_ms"],
                name="exec_history_time_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="sandboxexecution",
            index=models.Index(
                models.OrderBy(models.F("executed_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("error__isnull", False)),
                name="sandbox_failed_idx",
            ),
        ),
    ]
