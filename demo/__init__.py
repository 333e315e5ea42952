"""Demo data for the portal (a development-only app: not installed in production).

Two entry points, both idempotent:

``demo.seed.seed_base()``
    A few thousand realistic, linked rows in every table, written with the ORM in one
    transaction. Randomness comes from ``random.Random(42)`` and primary keys from
    ``uuid5`` over ``DEMO_NAMESPACE``, so a second run finds every planned row already
    there and inserts nothing. Rows keyed by a database identity are matched otherwise:
    execution history per (deterministic) session, sandbox runs as a whole (any run on a
    demo session), tool-cache entries on (tool name, arguments), OAuth accounts on
    (provider, account id); analytics user sessions go per user, all or nothing.

``demo.scale.scale_up()``
    Tops the gateway's tables up to a target row count with
    ``INSERT ... SELECT ... FROM generate_series(...)``, one committed batch per
    statement. Text is assembled in SQL from the same fragments the base seed uses,
    picked by a hash of the series number; sessions get ids
    ``md5('seed-demo-scale:' || n)::uuid`` and every execution and sandbox run is dated
    after the session it belongs to. Existing rows count towards the targets.

Where things live:

- ``demo/corpus/``: the text the rows are made of (data files, loaded once);
- ``demo.draws``: the seeded random draws (ids, weighted picks, moments, addresses);
- ``demo.content``: prompts, responses, tool and sandbox results assembled from the corpus;
- ``demo.plan`` and ``demo.builders``: every base-seed row in memory, one builder per app;
- ``demo.seed``, ``demo.groups``, ``demo.snapshots``: writing the base seed;
- ``demo.scale``: the bulk ``--scale`` top-up.

The audit tables are append-only, so this app only ever INSERTs into them (plain
INSERTs of the rows not there yet, never ON CONFLICT or UPDATE).
"""
