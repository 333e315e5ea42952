"""Introspection that sees tables in every schema, not only those on ``search_path``.

The stock queries filter with ``pg_table_is_visible(oid)`` and ``relname = %s``, so a
table named ``core"."projects`` is invisible to them: ``migrate`` then cannot find
unique constraints to drop (silent no-ops, "Found wrong number (0) of constraints"),
``flush`` truncates only ``public`` tables, and ``inspectdb`` loses schemas and
foreign keys. Here every per-table query resolves the name with
``to_regclass(<quoted name>)``, which understands schema-qualified names and resolves
a bare one through ``search_path`` exactly as PostgreSQL does.

Names are reported in the form models use in ``Meta.db_table``, decided the way
PostgreSQL resolves names, whatever ``search_path`` is:

- bare when the table is visible (``pg_table_is_visible``: the bare name resolves to
  it), so ``django_migrations``, content types and Django's auth tables are found
  wherever the path puts them: in ``public`` behind a role-named schema
  (``"$user", public`` with ``CREATE SCHEMA <role>``), or in the first schema of a
  path without ``public``;
- qualified (``schema"."table``) otherwise, and always in an app schema (one a model's
  ``db_table`` names), even when that schema is on the path (``search_path = core,
  public``): models name those tables qualified, so a bare name would look missing.
  The exception is a table models name bare that was created in an app schema
  because the path put it there first.
"""

from django.apps import apps
from django.db.backends.postgresql import introspection as pg
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Index

from .names import split_table


def model_name_sql(namespace: str, relation: str) -> str:
    """SQL for a relation's name as models spell it (module docstring). Needs the
    parameters ``app_schemas`` and ``bare_tables`` (see ``naming_params``)."""
    return (
        f"CASE WHEN pg_table_is_visible({relation}.oid) AND NOT "
        f"({namespace}.nspname = ANY(%(app_schemas)s) "
        f"AND {relation}.relname <> ALL(%(bare_tables)s)) "
        f"THEN {relation}.relname::text "
        f"ELSE {namespace}.nspname || '\".\"' || {relation}.relname END"
    )


def naming_params() -> dict[str, list[str]]:
    """The app schemas, and the tables models name bare, from the app registry."""
    schemas: set[str] = set()
    bare = {MigrationRecorder.Migration._meta.db_table}
    models = apps.get_models(include_auto_created=True) if apps.ready else []
    for model in models:
        schema, table = split_table(model._meta.db_table)
        if schema:
            schemas.add(schema)
        else:
            bare.add(table)
    return {"app_schemas": sorted(schemas), "bare_tables": sorted(bare)}


# The f-string inserts model_name_sql() over fixed aliases, never a value.
TABLE_LIST = f"""
    SELECT
        {model_name_sql("n", "c")},
        CASE
            WHEN c.relispartition THEN 'p'
            WHEN c.relkind IN ('m', 'v') THEN 'v'
            ELSE 't'
        END,
        obj_description(c.oid, 'pg_class')
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v')
        AND n.nspname <> 'pg_catalog'
        AND n.nspname <> 'information_schema'
        AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
"""  # noqa: S608

TABLE_COLUMNS = """
    SELECT
        a.attname,
        NOT (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)),
        pg_get_expr(ad.adbin, ad.adrelid),
        CASE WHEN co.collname = 'default' THEN NULL ELSE co.collname END,
        a.attidentity != '',
        col_description(a.attrelid, a.attnum)
    FROM pg_attribute a
    LEFT JOIN pg_attrdef ad ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    LEFT JOIN pg_collation co ON a.attcollation = co.oid
    JOIN pg_type t ON a.atttypid = t.oid
    WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
"""

# The f-string inserts model_name_sql() over fixed aliases, never a value.
SEQUENCES = f"""
    SELECT {model_name_sql("sn", "s")}, a.attname
    FROM pg_class s
    JOIN pg_namespace sn ON sn.oid = s.relnamespace
    JOIN pg_depend d ON d.objid = s.oid
        AND d.classid = 'pg_class'::regclass
        AND d.refclassid = 'pg_class'::regclass
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE s.relkind = 'S' AND d.refobjid = to_regclass(%(table)s)
"""  # noqa: S608

# Unlike the stock query, the referenced table may be in another schema.
# The f-string inserts model_name_sql() over fixed aliases, never a value.
RELATIONS = f"""
    SELECT a1.attname, {model_name_sql("n2", "c2")}, a2.attname
    FROM pg_constraint con
    JOIN pg_class c2 ON c2.oid = con.confrelid
    JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
    JOIN pg_attribute a1 ON a1.attrelid = con.conrelid AND a1.attnum = con.conkey[1]
    JOIN pg_attribute a2 ON a2.attrelid = con.confrelid AND a2.attnum = con.confkey[1]
    WHERE con.conrelid = to_regclass(%(table)s) AND con.contype = 'f'
"""  # noqa: S608

# The f-string inserts model_name_sql() over fixed aliases, never a value.
CONSTRAINTS = f"""
    SELECT
        c.conname,
        array(
            SELECT attname
            FROM unnest(c.conkey) WITH ORDINALITY cols(colid, arridx)
            JOIN pg_attribute AS ca ON cols.colid = ca.attnum
            WHERE ca.attrelid = c.conrelid
            ORDER BY cols.arridx
        ),
        c.contype,
        {model_name_sql("fkn", "fkc")},
        fka.attname,
        cl.reloptions
    FROM pg_constraint AS c
    JOIN pg_class AS cl ON c.conrelid = cl.oid
    LEFT JOIN pg_class AS fkc ON fkc.oid = c.confrelid
    LEFT JOIN pg_namespace AS fkn ON fkn.oid = fkc.relnamespace
    LEFT JOIN pg_attribute AS fka ON fka.attrelid = c.confrelid AND fka.attnum = c.confkey[1]
    WHERE cl.oid = to_regclass(%(table)s)
"""  # noqa: S608

INDEXES = """
    SELECT
        indexname,
        array_agg(attname ORDER BY arridx),
        indisunique,
        indisprimary,
        array_agg(ordering ORDER BY arridx),
        amname,
        exprdef,
        s2.attoptions
    FROM (
        SELECT
            c2.relname AS indexname, idx.*, attr.attname, am.amname,
            CASE WHEN idx.indexprs IS NOT NULL THEN pg_get_indexdef(idx.indexrelid) END
                AS exprdef,
            CASE am.amname
                WHEN %(default_am)s THEN
                    CASE (option & 1) WHEN 1 THEN 'DESC' ELSE 'ASC' END
            END AS ordering,
            c2.reloptions AS attoptions
        FROM (
            SELECT *
            FROM pg_index i, unnest(i.indkey, i.indoption) WITH ORDINALITY koi(key, option, arridx)
            WHERE i.indrelid = to_regclass(%(table)s)
        ) idx
        JOIN pg_class c2 ON idx.indexrelid = c2.oid
        JOIN pg_am am ON c2.relam = am.oid
        LEFT JOIN pg_attribute attr ON attr.attrelid = idx.indrelid AND attr.attnum = idx.key
    ) s2
    GROUP BY indexname, indisunique, indisprimary, amname, exprdef, attoptions
"""


class DatabaseIntrospection(pg.DatabaseIntrospection):
    def _regclass(self, table_name: str) -> dict[str, str | list[str]]:
        return {"table": self.connection.ops.quote_name(table_name), **naming_params()}

    def get_table_list(self, cursor):
        cursor.execute(TABLE_LIST, naming_params())
        return [
            pg.TableInfo(*row) for row in cursor.fetchall() if row[0] not in self.ignored_tables
        ]

    def get_table_description(self, cursor, table_name):
        cursor.execute(TABLE_COLUMNS, self._regclass(table_name))
        field_map = {line[0]: line[1:] for line in cursor.fetchall()}
        # An identifier, quoted by the backend as the stock method does; not a value.
        table = self.connection.ops.quote_name(table_name)
        cursor.execute("SELECT * FROM " + table + " LIMIT 1")  # noqa: S608
        return [
            pg.FieldInfo(
                line.name,
                line.type_code,
                line.internal_size if line.display_size is None else line.display_size,
                line.internal_size,
                line.precision,
                line.scale,
                *field_map[line.name],
            )
            for line in cursor.description
        ]

    def get_sequences(self, cursor, table_name, table_fields=()):
        cursor.execute(SEQUENCES, self._regclass(table_name))
        return [
            {"name": name, "table": table_name, "column": column}
            for name, column in cursor.fetchall()
        ]

    def get_relations(self, cursor, table_name):
        cursor.execute(RELATIONS, self._regclass(table_name))
        return {row[0]: (row[2], row[1]) for row in cursor.fetchall()}

    def get_constraints(self, cursor, table_name):
        constraints = {}
        cursor.execute(CONSTRAINTS, self._regclass(table_name))
        for name, columns, kind, fk_table, fk_column, options in cursor.fetchall():
            constraints[name] = {
                "columns": columns,
                "primary_key": kind == "p",
                "unique": kind in ("p", "u"),
                "foreign_key": (fk_table, fk_column) if kind == "f" else None,
                "check": kind == "c",
                "index": False,
                "definition": None,
                "options": options,
            }
        cursor.execute(
            INDEXES,
            {**self._regclass(table_name), "default_am": self.index_default_access_method},
        )
        for (
            index,
            columns,
            unique,
            primary,
            orders,
            type_,
            definition,
            options,
        ) in cursor.fetchall():
            if index in constraints:
                continue
            basic_index = (
                type_ == self.index_default_access_method
                # '_btree' is django.contrib.postgres.indexes.BTreeIndex.suffix.
                and not index.endswith("_btree")
                and options is None
            )
            constraints[index] = {
                "columns": columns if columns != [None] else [],
                "orders": orders if orders != [None] else [],
                "primary_key": primary,
                "unique": unique,
                "foreign_key": None,
                "check": False,
                "index": True,
                "type": Index.suffix if basic_index else type_,
                "definition": definition,
                "options": options,
            }
        return constraints
