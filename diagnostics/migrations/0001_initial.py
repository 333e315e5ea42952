"""The diagnostics models, taken over from the analytics app without touching a table.

StatsSnapshot, TableSizeSnapshot, QueryStatSnapshot (analytics 0002) and the table-less
Diagnostics permission holder (analytics 0003) now belong to this app. Their tables
stay where they are, in the analytics schema (Metabase's ``database_size_history``
view reads ``stats_snapshots``), so the models enter this app's state only; analytics
0005 then removes them from that app's state, also without database operations.

Existing permissions and the groups and users holding them must carry over: their
content types are renamed in place (app_label analytics -> diagnostics), so every
permission row, and every group or user link to it, keeps its id. If a content type
with the new label already exists (something ran the new code before this migration),
the old one is merged into it instead: links move to the new permissions, duplicates
go, then the old content type goes.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.apps import apps as global_apps
from django.db import migrations, models, router

MODELS = ("diagnostics", "statssnapshot", "tablesizesnapshot", "querystatsnapshot")


def _permission_links(apps, Permission):
    """(through model, owner field, permission field) of every many-to-many to Permission."""
    for model in apps.get_models():
        for field in model._meta.local_many_to_many:
            if field.remote_field.model is Permission:
                yield (
                    field.remote_field.through,
                    field.m2m_field_name(),
                    field.m2m_reverse_field_name(),
                )


def _merge(apps, db, ContentType, Permission, old, new):
    permissions = Permission.objects.using(db)
    for perm in permissions.filter(content_type=old):
        twin = permissions.filter(content_type=new, codename=perm.codename).first()
        if twin is None:
            perm.content_type = new
            perm.save(using=db, update_fields=["content_type"])
            continue
        for through, owner, target in _permission_links(apps, Permission):
            links = through._base_manager.using(db)
            holding = links.filter(**{target: twin}).values_list(owner, flat=True)
            links.filter(**{target: perm}).exclude(**{f"{owner}__in": holding}).update(
                **{target: twin}
            )
        perm.delete()  # with the links that the twin already had
    # Anything else pointing at the old content type (the admin's log) follows it.
    for model in apps.get_models():
        if model is Permission:
            continue
        for field in model._meta.concrete_fields:
            if field.many_to_one and field.related_model is ContentType:
                model._base_manager.using(db).filter(**{field.name: old}).update(
                    **{field.name: new}
                )
    old.delete()


def _move_content_types(apps, schema_editor, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    if not router.allow_migrate_model(db, ContentType):
        return
    types = ContentType.objects.using(db)
    for model in MODELS:
        old = types.filter(app_label=source, model=model).first()
        if old is None:
            continue  # a new database: post_migrate creates it under the new label
        new = types.filter(app_label=target, model=model).first()
        if new is None:
            old.app_label = target
            old.save(using=db, update_fields=["app_label"])
        else:
            _merge(apps, db, ContentType, Permission, old, new)
    # Both managers cache content types by natural key and id: drop the stale entries.
    ContentType.objects.clear_cache()
    global_apps.get_model("contenttypes", "ContentType").objects.clear_cache()


def to_diagnostics(apps, schema_editor):
    _move_content_types(apps, schema_editor, "analytics", "diagnostics")


def to_analytics(apps, schema_editor):
    _move_content_types(apps, schema_editor, "diagnostics", "analytics")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        # The tables (0002), the permission holder (0003) and the view that reads
        # stats_snapshots (0004).
        ("analytics", "0004_metabase_views"),
        # On a new database the roles migration creates the analytics content types and
        # permissions (and gives them to the roles): renaming after it gives new and old
        # databases the same path.
        ("accounts", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Diagnostics",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                    ],
                    options={
                        "permissions": [
                            ("view_diagnostics", "Can view database diagnostics"),
                            ("signal_backend", "Can cancel or terminate database sessions"),
                            ("reset_query_stats", "Can reset query statistics"),
                        ],
                        "managed": False,
                        "default_permissions": (),
                    },
                ),
                migrations.CreateModel(
                    name="StatsSnapshot",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("alias", models.CharField(max_length=100)),
                        ("database", models.CharField(max_length=100)),
                        (
                            "captured_at",
                            models.DateTimeField(
                                db_default=django.db.models.functions.datetime.Now(),
                                default=django.utils.timezone.now,
                            ),
                        ),
                        ("database_size_bytes", models.BigIntegerField()),
                        ("connections_total", models.IntegerField()),
                        ("connections_active", models.IntegerField()),
                        ("connections_idle", models.IntegerField()),
                        ("connections_idle_in_transaction", models.IntegerField()),
                        ("max_connections", models.IntegerField()),
                        ("xact_commit", models.BigIntegerField(null=True)),
                        ("xact_rollback", models.BigIntegerField(null=True)),
                        ("blks_hit", models.BigIntegerField(null=True)),
                        ("blks_read", models.BigIntegerField(null=True)),
                    ],
                    options={
                        "verbose_name": "statistics snapshot",
                        "db_table": 'analytics"."stats_snapshots',
                        "ordering": ["-captured_at"],
                        "indexes": [
                            models.Index(
                                fields=["database", "-captured_at"], name="stats_snapshots_db_idx"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="QueryStatSnapshot",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("queryid", models.BigIntegerField()),
                        ("role_name", models.CharField(blank=True, default="", max_length=100)),
                        ("query", models.TextField()),
                        ("calls", models.BigIntegerField()),
                        ("total_exec_time_ms", models.FloatField()),
                        ("rows", models.BigIntegerField()),
                        ("shared_blks_hit", models.BigIntegerField(default=0)),
                        ("shared_blks_read", models.BigIntegerField(default=0)),
                        ("calls_cumulative", models.BigIntegerField()),
                        ("total_exec_time_ms_cumulative", models.FloatField()),
                        ("rows_cumulative", models.BigIntegerField(default=0)),
                        ("shared_blks_hit_cumulative", models.BigIntegerField(default=0)),
                        ("shared_blks_read_cumulative", models.BigIntegerField(default=0)),
                        (
                            "snapshot",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="queries",
                                to="diagnostics.statssnapshot",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "query statistics snapshot",
                        "db_table": 'analytics"."query_stat_snapshots',
                        "indexes": [
                            models.Index(fields=["queryid"], name="query_stat_snap_qid_idx")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="TableSizeSnapshot",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("schema_name", models.CharField(max_length=100)),
                        ("table_name", models.CharField(max_length=100)),
                        ("total_bytes", models.BigIntegerField()),
                        ("table_bytes", models.BigIntegerField()),
                        ("index_bytes", models.BigIntegerField()),
                        ("toast_bytes", models.BigIntegerField()),
                        ("row_estimate", models.BigIntegerField()),
                        (
                            "snapshot",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="tables",
                                to="diagnostics.statssnapshot",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "table size snapshot",
                        "db_table": 'analytics"."table_size_snapshots',
                        "indexes": [
                            models.Index(
                                fields=["schema_name", "table_name"],
                                name="table_size_snap_name_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(to_diagnostics, to_analytics),
    ]
